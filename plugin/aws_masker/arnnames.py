"""The resource name a masked ARN holds, for the echo (echo.py).

An ARN is masked as one token, but the name inside it (``arn:aws:s3:::acme-prod-data/logs/*``,
``arn:aws:rds:…:db:orders-prod-db-1``) is often written bare elsewhere in the same request ("why is
orders-prod-db-1 slow?"). ``arn_name`` gives that name, with the token kind and category an echo of it
gets, for the ARN shapes whose resource part is a name the customer chose:

- S3 bucket (``arn:aws:s3:::<bucket>[/key]``): kind ``S3_BUCKET``, as a bucket found anywhere else;
- RDS instance or cluster (``db:<name>``, ``cluster:<name>``): kind ``RDS``;
- DynamoDB table (``table/<name>[/…]``), Lambda function (``function:<name>[:alias]``), SQS queue,
  SNS topic, IAM role or user (the last segment of its path; the role of an STS assumed-role ARN):
  the ARN's own kind (``LAMBDA_ARN``…), since the token grammar has no kind for their bare names;
- Organizations root (``root/o-…/<r-id>``): kind ``ORG_ROOT`` (a root ID is found bare only with
  context; organization and OU IDs are found by their shape).
- a Step Functions state machine or execution (its own name), a Batch job queue or compute
  environment: the ARN's own kind;
- the IDs of a CloudFront distribution, Route 53 hosted zone, Cognito user pool, API Gateway
  API and ECS task, and the names of a load balancer and EKS cluster: the ARN's own kind (a
  describe call prints the ID bare next to the ARN: ``"KeyId": ..., "Arn": ...``).

- an ECS cluster or service, a Kinesis stream, a Firehose delivery stream, an ECR repository, a
  CodeBuild project, a Glue job or crawler, an ElastiCache replication group or cluster, a target
  group, a CloudFormation stack, a CodePipeline pipeline, an EventBridge rule or event bus, a
  Redshift cluster, an OpenSearch domain, an Athena workgroup, a CodeCommit repository and a
  SageMaker endpoint, notebook instance, training job or model: the ARN's own kind;
- the paths of an SSM parameter (``parameter/orders/prod/db_password``: ``/orders/prod/db_password``)
  and a log group, and a Secrets Manager secret's name (without the six characters AWS adds:
  ``secret:orders-prod/db-credentials-AbCdEf``): the ARN's own kind, echoed as paths.

Left out: names with characters a whole word of names is not made of (``@``, ``+``…), service-linked
roles (the same in every account), and every other ARN type (IDs, not names). Whether a name is
echoed at all is echo.worth_echoing's filter: ``role/admin`` or ``function:handler`` never make
"admin" or "handler" masked in the prose.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PATH = re.compile(r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}\Z")
_PATH_KINDS = frozenset(("SSM_ARN", "LOG_GROUP_ARN", "SECRET_ARN", "ECR_ARN"))


# services whose ARN's resource is <type>/<name> (or <type>:<name>): the type, and the name's kind
_NAME_AFTER = {
    "cloudfront": ("distribution/", "CLOUDFRONT_ARN"),
    "route53": ("hostedzone/", "ROUTE53_ARN"),
    "cognito-idp": ("userpool/", "COGNITO_ARN"),
    "eks": ("cluster/", "EKS_ARN"),
    "kinesis": ("stream/", "KINESIS_ARN"),
    "firehose": ("deliverystream/", "FIREHOSE_ARN"),
    "ecr": ("repository/", "ECR_ARN"),
    "codebuild": ("project/", "CODEBUILD_ARN"),
    "es": ("domain/", "ES_DOMAIN_ARN"),
    "athena": ("workgroup/", "ATHENA_ARN"),
    "redshift": ("cluster:", "REDSHIFT_ARN"),
}
# services whose ARN's resource ends in the name, after one of these types (service/<cluster>/<service>)
_NAME_LAST = {
    "ecs": (("task/", "cluster/", "service/"), "ECS_ARN"),
    "batch": (("job-queue/", "compute-environment/"), "BATCH_ARN"),
    "glue": (("job/", "crawler/"), "GLUE_ARN"),
    # (rule/<name>, or rule/<event bus>/<name> on a custom bus)
    "events": (("rule/", "event-bus/"), "EVENTS_ARN"),
    "sagemaker": (("endpoint/", "notebook-instance/", "training-job/", "model/"), "SAGEMAKER_ARN"),
}
# services whose ARN's resource is the name itself (no type, no path)
_NAME_WHOLE = {"codepipeline": "ARN", "codecommit": "CODECOMMIT_ARN"}


def _last(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def arn_name(arn: str) -> tuple[str, str, str] | None:
    """The resource name ``arn`` holds, with its echo's token kind and category, or None."""
    fields = arn.split(":", 5)
    if len(fields) < 6:
        return None
    _, _, service, region, account, resource = fields
    name: str | None = None
    kind, category = "", "arn"
    after = _NAME_AFTER.get(service)
    last = _NAME_LAST.get(service)
    if after is not None and resource.startswith(after[0]):
        name, kind = resource[len(after[0]) :], after[1]
    elif last is not None and resource.startswith(last[0]):
        name, kind = _last(resource), last[1]
    elif service == "s3":
        if region or account:
            return None  # an access point, an Outposts or Object Lambda resource: not a bucket
        name, kind, category = resource.split("/", 1)[0], "S3_BUCKET", "s3"
    elif service == "rds":
        rtype, _, rest = resource.partition(":")
        if rtype in ("db", "cluster"):
            name, kind, category = rest, "RDS", "rds"
    elif service == "dynamodb" and resource.startswith("table/"):
        name, kind = resource[6:].split("/", 1)[0], "DYNAMODB_ARN"
    elif service == "lambda" and resource.startswith("function:"):
        name, kind = resource[9:].split(":", 1)[0], "LAMBDA_ARN"
    elif service == "sqs":
        name, kind = resource, "SQS_ARN"
    elif service == "sns":
        name, kind = resource.split(":", 1)[0], "SNS_ARN"
    elif service == "iam" and resource.startswith(("role/", "user/")):
        if resource.startswith("role/aws-service-role/"):
            return None
        name, kind = _last(resource), "IAM_ROLE_ARN" if resource[0] == "r" else "IAM_USER_ARN"
    elif service == "sts" and resource.startswith("assumed-role/"):
        name, kind = resource[13:].split("/", 1)[0], "IAM_ROLE_ARN"
    elif service == "apigateway" and resource.startswith("/restapis/"):
        name, kind = resource[10:].split("/", 1)[0], "APIGW_ARN"
    elif service == "execute-api":
        name, kind = resource.split("/", 1)[0], "APIGW_ARN"
    elif service == "elasticloadbalancing" and resource.startswith("loadbalancer/"):
        name, kind = resource.split("/")[-2], "ELB_ARN"  # (loadbalancer/[app|net/]<name>/<id>)
    elif service == "states" and resource.startswith(("execution:", "express:", "stateMachine:")):
        # (stateMachine:<name>, execution:<machine>:<execution name>: the execution's own name)
        parts = resource.split(":")
        name, kind = (parts[1] if parts[0] == "stateMachine" else parts[-1]), "STEP_FN_ARN"
    elif service == "organizations" and resource.startswith("root/"):
        name, kind, category = _last(resource), "ORG_ROOT", "account"
    elif service == "elasticache" and resource.startswith(("replicationgroup:", "cluster:")):
        name, kind = resource.split(":", 1)[1], "ELASTICACHE_ARN"
    elif service == "elasticloadbalancing" and resource.startswith("targetgroup/"):
        name, kind = resource.split("/")[1], "ELB_ARN"  # (targetgroup/<name>/<id>)
    elif service == "cloudformation" and resource.startswith("stack/"):
        name, kind = resource.split("/")[1], "CFN_STACK_ARN"  # (stack/<name>/<id>)
    elif service in _NAME_WHOLE and "/" not in resource and ":" not in resource:
        name, kind = resource, _NAME_WHOLE[service]
    elif service == "ssm" and resource.startswith("parameter/"):
        path = resource[10:]  # (a name with slashes begins with one, which the ARN does not repeat)
        name, kind = ("/" + path if "/" in path else path), "SSM_ARN"
    elif service == "logs" and resource.startswith("log-group:"):
        name, kind = resource[10:].split(":", 1)[0], "LOG_GROUP_ARN"
    elif service == "secretsmanager" and resource.startswith("secret:"):
        name, kind = _SECRET_SUFFIX.sub("", resource[7:]), "SECRET_ARN"
    if not name or not (_PATH if kind in _PATH_KINDS else _NAME).fullmatch(name):
        return None
    return name, kind, category
