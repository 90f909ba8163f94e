"""Fixtures for boto3 tests against the worker started by the e2e vitest run.

test/e2e/boto3.test.ts runs pytest with S3_ENDPOINT and the local identities in the
environment; the tests use boto3 unmodified (its default checksums, SigV4, path style).
"""
import os
import uuid

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
IDENTITIES = {
    "adminA": ("LOCALADMINA", "local-admin-a-secret", "000000000000000000000000000000aa"),
    "memberA": ("LOCALMEMBERA", "local-member-a-secret", "000000000000000000000000000000aa"),
    "adminB": ("LOCALADMINB", "local-admin-b-secret", "000000000000000000000000000000bb"),
}


def endpoint():
    return os.environ["S3_ENDPOINT"]


def client(service, who="adminA", **config):
    key, secret, _ = IDENTITIES[who]
    cfg = Config(region_name=REGION, s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config)
    return boto3.client(service, endpoint_url=endpoint(), aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)


def tenant(who):
    return IDENTITIES[who][2]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3():
    return client("s3")


@pytest.fixture(scope="session")
def kms():
    return client("kms")


@pytest.fixture(scope="session")
def bucket(s3):
    name = unique("boto3")
    s3.create_bucket(Bucket=name)
    return name
