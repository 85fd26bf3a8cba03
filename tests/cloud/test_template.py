"""The deploy templates pass cfn-lint, and their roles reach only what they need (the lake's prefix)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.mark.parametrize("template", ["template.yaml", "serve-template.yaml"])
def test_cfn_lint_passes(template: str) -> None:
    exe = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(exe), str(DEPLOY / template)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_least_privilege_and_image_handler() -> None:
    text = (DEPLOY / "template.yaml").read_text()
    assert '!Sub "${LakeBucket.Arn}/${LakePrefix}/*"' in text and "s3:*" not in text and '"*"' not in text
    assert 'CMD ["fraudflow.cloud.lambda_handler.handler"]' in (DEPLOY / "Dockerfile").read_text()


def serve_template() -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    template: dict[str, Any] = cfn_yaml.loads((DEPLOY / "serve-template.yaml").read_text())
    return template


#: The only actions granted on every resource: IAM cannot scope them to one (the ECR login, and the
#: network interfaces SageMaker creates in the VPC).
UNSCOPABLE = {
    "ecr:GetAuthorizationToken",
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
}


def test_the_service_role_reads_only_the_lake_prefix() -> None:
    role = serve_template()["Resources"]["ServiceRole"]["Properties"]
    assert set(role) == {"AssumeRolePolicyDocument", "Policies"}  # no managed policy widens it
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    grants: dict[str, list[Any]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), actions
        for action in actions:
            grants.setdefault(action, []).append(statement)
    s3 = {action for action in grants if action.startswith("s3:")}
    assert s3 == {"s3:GetObject", "s3:ListBucket"}  # reads only: no put, no delete
    (get,) = grants["s3:GetObject"]
    assert get["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${LakeBucket}/${LakePrefix}/*"}
    (listing,) = grants["s3:ListBucket"]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [{"Fn::Sub": "${LakePrefix}/*"}, {"Ref": "LakePrefix"}]
    everywhere = {a for a, ss in grants.items() for s in ss if s["Resource"] == "*"}
    assert everywhere == UNSCOPABLE
    pull = grants["ecr:BatchGetImage"][0]["Resource"]["Fn::Sub"]
    assert pull.endswith(":repository/${ImageRepository}")
    logs = grants["logs:PutLogEvents"][0]["Resource"]["Fn::Sub"]
    assert logs.endswith(":log-group:/aws/sagemaker/Endpoints/${EndpointName}:*")


def test_the_endpoint_runs_the_image_on_the_lake_and_redis() -> None:
    resources = serve_template()["Resources"]
    container = resources["ServiceModel"]["Properties"]["PrimaryContainer"]
    assert container["Image"] == {"Ref": "ImageUri"}
    env = container["Environment"]
    assert env["FRAUDFLOW_DATA"] == {"Fn::Sub": "s3://${LakeBucket}/${LakePrefix}"}
    assert env["FRAUDFLOW_ONLINE"]["Fn::Sub"].startswith("rediss://${OnlineStore.PrimaryEndPoint.Address}:")
    assert "FRAUDFLOW_API_KEY" not in env  # SageMaker's InvokeEndpoint sends no X-API-Key
    # Redis answers the service's security group only, over TLS
    (ingress,) = resources["OnlineStoreSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": ["ServiceSecurityGroup", "GroupId"]}
    assert resources["OnlineStore"]["Properties"]["TransitEncryptionEnabled"] is True
    (variant,) = resources["ServiceEndpointConfig"]["Properties"]["ProductionVariants"]
    assert variant["ModelName"] == {"Fn::GetAtt": ["ServiceModel", "ModelName"]}


def test_the_service_image_installs_from_the_lock_and_serves() -> None:
    dockerfile = (DEPLOY / "serve.Dockerfile").read_text()
    installs = re.findall(r"^RUN uv sync (.*)$", dockerfile, re.M)
    assert len(installs) == 2 and all("--frozen" in i and "--extra aws --extra redis" in i for i in installs)
    assert "pip install --no-cache-dir" in dockerfile and "uv==${UV_VERSION}" in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert f"ARG UV_VERSION={re.search(r'^UV_VERSION := (.+)$', makefile, re.M).group(1)}" in dockerfile  # type: ignore[union-attr]
    assert 'ENTRYPOINT ["/usr/local/bin/serve-entrypoint"]' in dockerfile and 'CMD ["serve"]' in dockerfile
    assert "COPY deploy/serve-entrypoint.sh /usr/local/bin/serve-entrypoint" in dockerfile
    assert (DEPLOY / "serve-entrypoint.sh").stat().st_mode & 0o111  # executable, as COPY keeps it
