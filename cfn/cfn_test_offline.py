"""Runs `cfn test` (cloudformation-cli 0.2.41) with no AWS account.

`cfn test --endpoint URL` sends the contract tests' requests to any Lambda
Invoke API (scripts/local_lambda.py here), but before that it asks the real STS
two things (rpdk.core.boto_helpers):

- the credential lookup, get_temporary_credentials(): STS GetSessionToken for
  long-term credentials (or AssumeRole when --role-arn is given); the result is
  sent to the handler as callerCredentials;
- the account, get_account(): STS GetCallerIdentity; sent as awsAccountId.

This wrapper answers exactly those STS operations locally, at the botocore
client level, and leaves everything else (the Lambda client, the contract
suite, pytest) as it is. Any other STS operation fails loudly instead of going
to the network. The AWS credentials of this process are set to dummy static
ones and no shared config, profile or instance metadata is read, so nothing
here can use a real account.

    python cfn/cfn_test_offline.py test --endpoint http://127.0.0.1:PORT \
        --function-name TaskRun --region us-east-1 [-- PYTEST ARGS]

Arguments are those of `cfn` itself.
"""
import datetime
import os
import sys

ACCOUNT_ID = os.environ.get("CFN_TEST_ACCOUNT_ID", "123456789012")
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # nosec - AWS's doc example
SESSION_TOKEN = "offline-contract-test-session-token"


def _isolate_from_real_aws():
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY_ID
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET_ACCESS_KEY
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def _credentials():
    expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return {
        "AccessKeyId": ACCESS_KEY_ID,
        "SecretAccessKey": SECRET_ACCESS_KEY,
        "SessionToken": SESSION_TOKEN,
        "Expiration": expiration,
    }


def _stub_sts(operation_name, api_params):
    if operation_name == "GetCallerIdentity":
        return {
            "UserId": "AIDAOFFLINECONTRACTTEST",
            "Account": ACCOUNT_ID,
            "Arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline-contract-test",
        }
    if operation_name == "GetSessionToken":
        return {"Credentials": _credentials()}
    if operation_name == "AssumeRole":
        role_arn = api_params.get("RoleArn", "")
        session = api_params.get("RoleSessionName", "offline")
        return {
            "Credentials": _credentials(),
            "AssumedRoleUser": {
                "AssumedRoleId": f"AROAOFFLINE:{session}",
                "Arn": f"{role_arn}/{session}",
            },
        }
    raise RuntimeError(
        f"cfn_test_offline: STS {operation_name} is not stubbed, and real STS is not "
        "to be called"
    )


def install_sts_stub():
    import botocore.client  # pylint: disable=import-outside-toplevel

    real_make_api_call = botocore.client.BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        if self.meta.service_model.service_name == "sts":
            return _stub_sts(operation_name, api_params)
        return real_make_api_call(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _make_api_call


def main(argv):
    _isolate_from_real_aws()
    install_sts_stub()
    from rpdk.core.cli import main as cfn_main  # pylint: disable=import-outside-toplevel

    return cfn_main(args_in=argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
