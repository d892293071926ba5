#!/usr/bin/env python3
"""Print the EKS bearer token `aws eks get-token` would produce, at a fixed time.

The independent reference for `dora_action::aws::eks_token` (tests/eks_token.rs):
it drives botocore's own presigner exactly the way awscli's
`customizations/eks/get_token.py` does (an STS client with handlers on
`provide-client-params` / `before-sign` that move the `x-k8s-aws-id` parameter
into a signed header, `generate_presigned_url('get_caller_identity', ...,
ExpiresIn=60, HttpMethod='GET')`, then `k8s-aws-v1.` + urlsafe base64 without
`=` padding), with botocore's clock frozen. Presigning is offline: no request
is sent.

Usage:
    botocore_token.py --region=R --cluster=C --access-key-id=K
        --secret-access-key=S [--session-token=T] --time=20261126T120000Z
        [--url]

`--url` prints the presigned URL instead of the token. Pass values with `=`
so a value starting with `-` is not taken for an option.
"""

import argparse
import base64
import datetime
import os
import sys

# Nothing from the caller's environment or ~/.aws may change the result
# (profile, endpoint overrides, FIPS/dual-stack, legacy STS endpoints): the
# credentials, region and time come from the arguments only.
for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import botocore  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.session  # noqa: E402

# Same constants as awscli/customizations/eks/get_token.py.
URL_TIMEOUT = 60
TOKEN_PREFIX = "k8s-aws-v1."
K8S_AWS_ID_HEADER = "x-k8s-aws-id"


def freeze_clock(at):
    """Make botocore's SigV4 signers see `at` (a naive UTC datetime) as now.

    botocore 1.44.8 reads the time in `botocore.auth` through
    `get_current_datetime`, imported from `botocore.compat`; older versions
    called `datetime.datetime.utcnow()` instead. Refuse to run on a botocore
    without that hook rather than sign with the real time.
    """
    if not hasattr(botocore.auth, "get_current_datetime"):
        sys.exit(
            f"botocore {botocore.__version__}: no botocore.auth.get_current_datetime "
            "to freeze; upgrade botocore (scripts/test.sh setup)"
        )

    def frozen(remove_tzinfo=True):
        if remove_tzinfo:
            return at
        return at.replace(tzinfo=datetime.timezone.utc)

    botocore.auth.get_current_datetime = frozen


def presigned_url(region, cluster, access_key_id, secret_access_key, session_token):
    session = botocore.session.Session()
    # Today's default (and what `aws eks get-token` uses): the regional
    # endpoint https://sts.<region>.amazonaws.com, also for us-east-1.
    session.set_config_variable("sts_regional_endpoints", "regional")
    sts = session.create_client(
        "sts",
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
    )

    # STSClientFactory._register_k8s_aws_id_handlers
    def retrieve_k8s_aws_id(params, context, **kwargs):
        if K8S_AWS_ID_HEADER in params:
            context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)

    def inject_k8s_aws_id_header(request, **kwargs):
        if K8S_AWS_ID_HEADER in request.context:
            request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]

    sts.meta.events.register(
        "provide-client-params.sts.GetCallerIdentity", retrieve_k8s_aws_id
    )
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", inject_k8s_aws_id_header)

    # TokenGenerator._get_presigned_url
    return sts.generate_presigned_url(
        "get_caller_identity",
        Params={K8S_AWS_ID_HEADER: cluster},
        ExpiresIn=URL_TIMEOUT,
        HttpMethod="GET",
    )


def token_from_url(url):
    # TokenGenerator.get_token
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode(
        "utf-8"
    ).rstrip("=")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--region", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--access-key-id", required=True)
    p.add_argument("--secret-access-key", required=True)
    p.add_argument("--session-token", default=None)
    p.add_argument("--time", required=True, help="UTC, SigV4 form: 20261126T120000Z")
    p.add_argument("--url", action="store_true", help="print the URL, not the token")
    args = p.parse_args()

    at = datetime.datetime.strptime(args.time, "%Y%m%dT%H%M%SZ")
    freeze_clock(at)
    url = presigned_url(
        args.region,
        args.cluster,
        args.access_key_id,
        args.secret_access_key,
        args.session_token,
    )
    # The frozen clock must have been used: fail loudly if botocore changed
    # how it reads the time and the patch above no longer takes.
    if f"X-Amz-Date={args.time}&" not in url:
        sys.exit(f"botocore ignored the frozen clock: {url}")
    print(url if args.url else token_from_url(url))


if __name__ == "__main__":
    main()
