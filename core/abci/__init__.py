"""The ABCI 2.0 seam: the `Application` both engines drive, its call values, the socket server."""
