"""The node's JSON-RPC 2.0 interface: one method table over TCP, Unix, HTTP and WebSocket.

`services.NodeServices` is what the RPC needs from a node (the node
implements it; `rpc/` never imports `node/`); `server.RpcServer` serves it;
`client.RpcClient` calls it. docs/rpc.md is the normative description.
"""
