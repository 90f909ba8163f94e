"""Issue 16 end to end with boto3: lifecycle rules, Block Public Access, ACLs disabled
(ownership controls, ACL arguments) and bucket tags, as a user's scripts call them."""
import json

import pytest
from botocore.exceptions import ClientError

from conftest import client, tenant, unique


def error_of(call, *args, **kwargs):
    """(code, HTTP status) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture()
def fresh(s3):
    name = unique("settings")
    s3.create_bucket(Bucket=name)
    return name


def public_read(bucket):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})


def test_new_bucket_is_private_in_every_sense(s3, fresh):
    assert s3.get_public_access_block(Bucket=fresh)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_ownership_controls(Bucket=fresh)["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert error_of(s3.put_bucket_policy, Bucket=fresh, Policy=public_read(fresh)) == ("AccessDenied", 403)
    assert error_of(s3.put_object, Bucket=fresh, Key="k", Body=b"x", ACL="public-read") == ("AccessControlListNotSupported", 400)
    assert error_of(s3.put_bucket_acl, Bucket=fresh, ACL="public-read") == ("AccessControlListNotSupported", 400)
    s3.put_object(Bucket=fresh, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    grants = s3.get_object_acl(Bucket=fresh, Key="k")["Grants"]
    assert grants == [{"Grantee": {"ID": tenant("adminA"), "DisplayName": tenant("adminA"), "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}]
    assert error_of(s3.create_bucket, Bucket=unique("public"), ACL="public-read") == ("InvalidBucketAclWithObjectOwnership", 400)


def test_public_access_block_lifted_and_restricted(s3, fresh):
    other_tenant = client("s3", "adminB")
    s3.put_object(Bucket=fresh, Key="doc", Body=b"hello")
    s3.put_public_access_block(
        Bucket=fresh,
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True},
    )
    s3.put_bucket_policy(Bucket=fresh, Policy=public_read(fresh))
    assert s3.get_bucket_policy_status(Bucket=fresh)["PolicyStatus"] == {"IsPublic": False}
    assert error_of(other_tenant.get_object, Bucket=fresh, Key="doc") == ("AccessDenied", 403)
    s3.delete_public_access_block(Bucket=fresh)
    assert error_of(s3.get_public_access_block, Bucket=fresh) == ("NoSuchPublicAccessBlockConfiguration", 404)
    assert s3.get_bucket_policy_status(Bucket=fresh)["PolicyStatus"] == {"IsPublic": True}
    assert other_tenant.get_object(Bucket=fresh, Key="doc")["Body"].read() == b"hello"


def test_lifecycle_configuration_and_expiration_header(s3, fresh):
    rules = [
        {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
        {
            "ID": "uploads",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
        {
            "ID": "big",
            "Filter": {"And": {"Prefix": "tmp/", "ObjectSizeGreaterThan": 1024, "Tags": [{"Key": "k", "Value": "v"}]}},
            "Status": "Disabled",
            "Expiration": {"Days": 1},
        },
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=fresh, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=fresh)
    assert got["Rules"] == rules
    put = s3.put_object(Bucket=fresh, Key="logs/today.log", Body=b"line")
    assert put["Expiration"].endswith('GMT", rule-id="logs"')
    assert s3.head_object(Bucket=fresh, Key="logs/today.log")["Expiration"] == put["Expiration"]
    s3.put_object(Bucket=fresh, Key="data/k", Body=b"x")
    assert "Expiration" not in s3.head_object(Bucket=fresh, Key="data/k")
    code, status = error_of(
        s3.put_bucket_lifecycle_configuration,
        Bucket=fresh,
        LifecycleConfiguration={"Rules": [{"ID": "bad", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 0}}]},
    )
    assert (code, status) == ("InvalidArgument", 400)
    s3.delete_bucket_lifecycle(Bucket=fresh)
    assert error_of(s3.get_bucket_lifecycle_configuration, Bucket=fresh) == ("NoSuchLifecycleConfiguration", 404)


def test_bucket_tagging(s3, fresh):
    assert error_of(s3.get_bucket_tagging, Bucket=fresh) == ("NoSuchTagSet", 404)
    tags = [{"Key": "project", "Value": "Trinity"}, {"Key": "owner", "Value": "team a"}]
    s3.put_bucket_tagging(Bucket=fresh, Tagging={"TagSet": tags})
    assert s3.get_bucket_tagging(Bucket=fresh)["TagSet"] == tags
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert error_of(s3.put_bucket_tagging, Bucket=fresh, Tagging={"TagSet": too_many}) == ("BadRequest", 400)
    assert error_of(s3.put_bucket_tagging, Bucket=fresh, Tagging={"TagSet": [{"Key": "aws:x", "Value": "v"}]}) == ("InvalidTag", 400)
    assert error_of(client("s3", "adminB").get_bucket_tagging, Bucket=fresh) == ("AccessDenied", 403)
    s3.delete_bucket_tagging(Bucket=fresh)
    assert error_of(s3.get_bucket_tagging, Bucket=fresh) == ("NoSuchTagSet", 404)
