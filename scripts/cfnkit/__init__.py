"""What the local tools play of AWS around a handler binary, written once (standard library only):

- `cfnkit.driver`: CloudFormation's side of a resource handler: the request envelope with
  every scalar as a string, one bearer token per operation, re-invoking with the returned
  callbackContext after callbackDelaySeconds until the operation ends;
- `cfnkit.runtime_api`: Lambda's side: the Runtime API a handler binary polls, the
  variables a sandbox sets, and a threaded sandbox that runs the binary behind them.

Used by scripts/local_lambda.py, demo.py, bench.py and bench_many.py (which imports them with
scripts/ on sys.path, as Python puts a script's folder there)."""

# The account and region the local tools play in (the emulator's defaults).
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
