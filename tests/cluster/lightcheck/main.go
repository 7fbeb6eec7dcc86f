// lightcheck runs CometBFT's own light client verification (light.Verify) on the
// cases it reads as JSON from stdin and prints one verdict per case, so the Python
// light client (core/light.py) can be compared with it on the same headers.
//
// Input:  [{"chain_id": str, "now": RFC 3339, "trusting_period_ms": int,
//           "clock_drift_ms": int,
//           "trusted": {"signed_header": {...}, "validators": [...]},
//           "untrusted": {"signed_header": {...}, "validators": [...]}}, ...]
// (signed headers and validators as CometBFT's RPC serves them: /commit, /validators)
// Output: [{"ok": bool, "error": str}, ...]
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/light"
	"github.com/cometbft/cometbft/types"
)

type block struct {
	SignedHeader json.RawMessage `json:"signed_header"`
	Validators   json.RawMessage `json:"validators"`
}

type verifyCase struct {
	ChainID          string `json:"chain_id"`
	Now              string `json:"now"`
	TrustingPeriodMs int64  `json:"trusting_period_ms"`
	ClockDriftMs     int64  `json:"clock_drift_ms"`
	Trusted          block  `json:"trusted"`
	Untrusted        block  `json:"untrusted"`
}

type verdict struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func load(b block) (*types.SignedHeader, *types.ValidatorSet, error) {
	var header types.SignedHeader
	if err := cmtjson.Unmarshal(b.SignedHeader, &header); err != nil {
		return nil, nil, fmt.Errorf("signed header: %w", err)
	}
	var validators []*types.Validator
	if err := cmtjson.Unmarshal(b.Validators, &validators); err != nil {
		return nil, nil, fmt.Errorf("validators: %w", err)
	}
	// The set in the order served (no re-sorting), as the header's hash covers it.
	return &header, &types.ValidatorSet{Validators: validators}, nil
}

func check(c verifyCase) error {
	trusted, trustedVals, err := load(c.Trusted)
	if err != nil {
		return err
	}
	untrusted, untrustedVals, err := load(c.Untrusted)
	if err != nil {
		return err
	}
	now, err := time.Parse(time.RFC3339Nano, c.Now)
	if err != nil {
		return err
	}
	return light.Verify(trusted, trustedVals, untrusted, untrustedVals,
		time.Duration(c.TrustingPeriodMs)*time.Millisecond, now,
		time.Duration(c.ClockDriftMs)*time.Millisecond, light.DefaultTrustLevel)
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var cases []verifyCase
	if err := json.Unmarshal(input, &cases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	verdicts := make([]verdict, len(cases))
	for i, c := range cases {
		if err := check(c); err != nil {
			verdicts[i] = verdict{OK: false, Error: err.Error()}
		} else {
			verdicts[i] = verdict{OK: true}
		}
	}
	out, _ := json.Marshal(verdicts)
	fmt.Println(string(out))
}
