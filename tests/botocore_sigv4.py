#!/usr/bin/env python3
"""Print the SigV4 headers botocore's signer adds to a request, at a fixed time.

The independent reference for `dora_action::aws::sigv4_headers` (used for
remote-write to Amazon Managed Service for Prometheus, service `aps`; see
tests/remote_write_sigv4.rs): botocore's `SigV4Auth.add_auth` on an
`AWSRequest` with the given method, URL, headers and body, with botocore's
clock frozen. Offline: nothing is sent.

Usage:
    botocore_sigv4.py --region=R --service=S --method=M --url=U
        --access-key-id=K --secret-access-key=S [--session-token=T]
        --time=20261126T120000Z [--header=name:value ...] < body

Prints a JSON object of the headers botocore added (lower-cased names).
"""

import argparse
import datetime
import json
import os
import sys

for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.credentials  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("region", "service", "method", "url", "access-key-id", "secret-access-key", "time"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--session-token", default=None)
    p.add_argument("--header", action="append", default=[])
    args = p.parse_args()

    at = datetime.datetime.strptime(args.time, "%Y%m%dT%H%M%SZ")
    if not hasattr(botocore.auth, "get_current_datetime"):
        sys.exit("botocore has no botocore.auth.get_current_datetime to freeze")

    def frozen(remove_tzinfo=True):
        return at if remove_tzinfo else at.replace(tzinfo=datetime.timezone.utc)

    botocore.auth.get_current_datetime = frozen

    headers = dict(h.split(":", 1) for h in args.header)
    body = sys.stdin.buffer.read()
    request = botocore.awsrequest.AWSRequest(
        method=args.method, url=args.url, headers=headers, data=body
    )
    credentials = botocore.credentials.Credentials(
        args.access_key_id, args.secret_access_key, args.session_token
    )
    botocore.auth.SigV4Auth(credentials, args.service, args.region).add_auth(request)
    added = {
        k.lower(): v
        for k, v in request.headers.items()
        if k.lower() not in {h.lower() for h in headers}
    }
    if added.get("x-amz-date") != args.time:
        sys.exit(f"botocore ignored the frozen clock: {added}")
    print(json.dumps(added, sort_keys=True))


if __name__ == "__main__":
    main()
