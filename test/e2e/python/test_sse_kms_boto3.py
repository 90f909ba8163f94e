"""Issues 2 and 3 end to end with boto3: SSE-KMS round trips, ranges, presigned GET,
multi-delete, a tampered signature, and every SSE error by code and HTTP status."""
import hashlib
import json
import os
import urllib.error
import urllib.request

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from conftest import client, tenant, unique

CHUNK = 65536
MIB = 1024 * 1024


def sha(data):
    return hashlib.sha256(data).hexdigest()


def error_of(call, *args, **kwargs):
    """(code, HTTP status) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def new_key(kms, *then):
    meta = kms.create_key(Description="boto3 e2e")["KeyMetadata"]
    for action in then:
        action(meta["KeyId"])
    return meta


def fresh_connection_for_empty_bodies(s3, size):
    """Empty uploads get their own client: see test_connection_reused_after_an_empty_upload."""
    return client("s3") if size == 0 else s3


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1])
def test_round_trip_with_default_key(s3, bucket, size):
    s3 = fresh_connection_for_empty_bodies(s3, size)
    data = os.urandom(size)
    key = f"rt/{size}"
    put = s3.put_object(Bucket=bucket, Key=key, Body=data, ServerSideEncryption="aws:kms")
    assert put["ServerSideEncryption"] == "aws:kms"
    arn = put["SSEKMSKeyId"]
    assert arn.startswith(f"arn:aws:kms:us-east-1:{tenant('adminA')}:key/")
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == size
    assert got["SSEKMSKeyId"] == arn
    assert sha(got["Body"].read()) == sha(data)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == arn


def test_50_mib_with_a_customer_key_and_ranges(s3, kms, bucket, tmp_path):
    key = new_key(kms)
    size = 50 * MIB
    src = tmp_path / "big.bin"
    data = os.urandom(size)
    src.write_bytes(data)
    single = TransferConfig(multipart_threshold=256 * MIB)  # one PutObject: multipart is another suite's concern
    s3.upload_file(str(src), bucket, "big.bin", ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key["Arn"]}, Config=single)
    src.unlink()
    dst = tmp_path / "big.out"
    s3.download_file(bucket, "big.bin", str(dst), Config=single)
    assert sha(dst.read_bytes()) == sha(data)
    dst.unlink()
    assert s3.head_object(Bucket=bucket, Key="big.bin")["SSEKMSKeyId"] == key["Arn"]
    for rng, first, last in [
        (f"bytes={CHUNK - 1}-{CHUNK}", CHUNK - 1, CHUNK),
        (f"bytes={CHUNK}-{2 * CHUNK - 1}", CHUNK, 2 * CHUNK - 1),
        (f"bytes={777 * CHUNK - 3}-{779 * CHUNK + 3}", 777 * CHUNK - 3, 779 * CHUNK + 3),
        (f"bytes={size - CHUNK}-", size - CHUNK, size - 1),
        ("bytes=-1", size - 1, size - 1),
        (f"bytes=-{CHUNK + 1}", size - CHUNK - 1, size - 1),
    ]:
        got = s3.get_object(Bucket=bucket, Key="big.bin", Range=rng)
        assert got["ContentRange"] == f"bytes {first}-{last}/{size}", rng
        assert got["Body"].read() == data[first : last + 1], rng
    assert error_of(s3.get_object, Bucket=bucket, Key="big.bin", Range=f"bytes={size}-") == ("InvalidRange", 416)


def test_presigned_get_with_plain_http(s3, bucket):
    data = os.urandom(70_000)
    s3.put_object(Bucket=bucket, Key="presigned", Body=data, ServerSideEncryption="aws:kms")
    # boto3 presigns with SigV2 unless told otherwise; AWS requires SigV4 for SSE-KMS objects.
    v2 = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=300)
    assert "Signature=" in v2 and "X-Amz-Signature=" not in v2
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(v2)
    assert info.value.code == 400
    assert b"<Code>InvalidArgument</Code>" in info.value.read()
    url = client("s3", signature_version="s3v4").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url) as r:
        assert r.status == 200
        assert r.headers["x-amz-server-side-encryption"] == "aws:kms"
        assert r.read() == data
    ranged = urllib.request.Request(url, headers={"Range": "bytes=65530-65545"})
    with urllib.request.urlopen(ranged) as r:
        assert r.status == 206
        assert r.read() == data[65530:65546]


def test_multi_delete(s3, bucket):
    # A space and a literal "+": listed with encoding-type=url ("+" and "%2B"), decoded by botocore.
    keys = ["md/a", "md/b c", "md/d+e", "md/ü"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode(), ServerSideEncryption="aws:kms")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="md/")["Contents"]) == sorted(keys)
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": False})
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(keys)
    assert result.get("Errors", []) == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix="md/")["KeyCount"] == 0


def test_tampered_signature_is_refused_with_403(bucket):
    s3 = client("s3")

    def tamper(request, **_):
        auth = request.headers["Authorization"]
        auth = auth.decode() if isinstance(auth, bytes) else auth
        at = auth.index("Signature=") + len("Signature=")
        request.headers["Authorization"] = auth[:at] + ("1" if auth[at] == "0" else "0") + auth[at + 1 :]

    s3.meta.events.register("before-send.s3.PutObject", tamper)
    assert error_of(s3.put_object, Bucket=bucket, Key="tampered", Body=b"x", ServerSideEncryption="aws:kms") == ("SignatureDoesNotMatch", 403)
    assert error_of(client("s3").head_object, Bucket=bucket, Key="tampered")[1] == 404


def test_copy_between_keys_and_context(s3, kms, bucket):
    key = new_key(kms)
    context = __import__("base64").b64encode(json.dumps({"suite": "boto3"}).encode()).decode()
    s3.put_object(Bucket=bucket, Key="copy-src", Body=b"copy me", ServerSideEncryption="aws:kms", SSEKMSEncryptionContext=context)
    assert s3.head_object(Bucket=bucket, Key="copy-src")["ServerSideEncryption"] == "aws:kms"
    out = s3.copy_object(Bucket=bucket, Key="copy-dst", CopySource={"Bucket": bucket, "Key": "copy-src"}, ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    assert out["SSEKMSKeyId"] == key["Arn"]
    got = s3.get_object(Bucket=bucket, Key="copy-dst")
    assert got["Body"].read() == b"copy me"
    assert got["SSEKMSKeyId"] == key["Arn"]


# ---- SSE errors, by code and status ------------------------------------------------------


def test_key_id_without_aws_kms_is_invalid_argument(s3, kms, bucket):
    key = new_key(kms)
    assert error_of(s3.put_object, Bucket=bucket, Key="e", Body=b"x", SSEKMSKeyId=key["Arn"]) == ("InvalidArgument", 400)
    assert error_of(s3.put_object, Bucket=bucket, Key="e", Body=b"x", ServerSideEncryption="AES256", SSEKMSKeyId=key["Arn"]) == ("InvalidArgument", 400)


def test_bad_algorithm_is_invalid_argument(s3, bucket):
    assert error_of(s3.put_object, Bucket=bucket, Key="e", Body=b"x", ServerSideEncryption="AES128") == ("InvalidArgument", 400)


def test_sse_header_on_get_is_invalid_argument(bucket):
    s3 = client("s3")
    s3.put_object(Bucket=bucket, Key="plain", Body=b"p")

    def add_header(request, **_):
        request.headers["x-amz-server-side-encryption"] = "aws:kms"

    s3.meta.events.register("before-sign.s3.GetObject", add_header)
    assert error_of(s3.get_object, Bucket=bucket, Key="plain") == ("InvalidArgument", 400)


def test_unknown_key_is_kms_not_found(s3, bucket):
    arn = f"arn:aws:kms:us-east-1:{tenant('adminA')}:key/00000000-0000-4000-8000-00000000beef"
    assert error_of(s3.put_object, Bucket=bucket, Key="e", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=arn) == ("KMS.NotFoundException", 400)
    assert error_of(s3.put_object, Bucket=bucket, Key="e", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=arn.split("/")[-1]) == ("KMS.NotFoundException", 400)


def test_disabled_key_is_kms_disabled_for_put_and_get(s3, kms, bucket):
    key = new_key(kms)
    s3.put_object(Bucket=bucket, Key="disabled", Body=b"d", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"])
    kms.disable_key(KeyId=key["KeyId"])
    assert error_of(s3.put_object, Bucket=bucket, Key="e", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"]) == ("KMS.DisabledException", 400)
    assert error_of(s3.get_object, Bucket=bucket, Key="disabled") == ("KMS.DisabledException", 400)
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="disabled")["Body"].read() == b"d"


def test_pending_deletion_is_kms_invalid_state_for_put_and_get(s3, kms, bucket):
    key = new_key(kms)
    s3.put_object(Bucket=bucket, Key="pending", Body=b"p", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert error_of(s3.put_object, Bucket=bucket, Key="e", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"]) == ("KMS.KMSInvalidStateException", 400)
    assert error_of(s3.get_object, Bucket=bucket, Key="pending") == ("KMS.KMSInvalidStateException", 400)


def test_member_asking_for_sse_kms_is_access_denied(bucket):
    member = client("s3", "memberA")
    assert error_of(member.put_object, Bucket=bucket, Key="m", Body=b"x", ServerSideEncryption="aws:kms") == ("AccessDenied", 403)
    assert error_of(client("s3", "memberA").put_object, Bucket=bucket, Key="m", Body=b"", ServerSideEncryption="aws:kms") == ("AccessDenied", 403)
    assert member.put_object(Bucket=bucket, Key="m", Body=b"x", ServerSideEncryption="AES256")["ServerSideEncryption"] == "AES256"


def test_other_tenant_never_reads_sse_kms_even_with_a_grant(s3):
    shared = unique("boto3-shared")
    s3.create_bucket(Bucket=shared)
    s3.put_object(Bucket=shared, Key="kms", Body=b"k", ServerSideEncryption="aws:kms")
    s3.put_object(Bucket=shared, Key="s3", Body=b"s", ServerSideEncryption="AES256")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{tenant('adminB')}:root"}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{shared}/*"}],
    }
    s3.put_bucket_policy(Bucket=shared, Policy=json.dumps(policy))
    other = client("s3", "adminB")
    assert other.get_object(Bucket=shared, Key="s3")["Body"].read() == b"s"
    assert error_of(other.get_object, Bucket=shared, Key="kms") == ("AccessDenied", 403)
    assert error_of(other.head_object, Bucket=shared, Key="kms")[1] == 403


def test_empty_upload_and_early_errors_answer_before_the_body(bucket):
    """boto3 sends Expect: 100-continue; answers that come before the body must still parse
    (they need a reason phrase in the status line)."""
    assert client("s3").put_object(Bucket=bucket, Key="empty", Body=b"")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client("s3").get_object(Bucket=bucket, Key="empty")["Body"].read() == b""
    assert error_of(client("s3").put_object, Bucket=unique("missing"), Key="k", Body=b"") == ("NoSuchBucket", 404)


@pytest.mark.xfail(
    strict=True,
    reason="known issue under workerd: an empty PutObject is answered without '100 Continue' (workerd sends it only when "
    "a body is read) and workerd manages Connection itself, so the connection stays open; botocore then reuses the "
    "early response's status line for the next Expect: 100-continue request on that connection and misreads it",
)
def test_connection_reused_after_an_empty_upload(bucket):
    s3 = client("s3")
    s3.put_object(Bucket=bucket, Key="empty-then", Body=b"")
    assert error_of(s3.put_object, Bucket=unique("missing"), Key="k", Body=b"") == ("NoSuchBucket", 404)
    # On the same pooled connection: misread as the previous answer (404) by botocore.
    assert s3.put_object(Bucket=bucket, Key="after", Body=b"data")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_presigned_url_with_tampered_signature_is_403(s3, bucket):
    s3.put_object(Bucket=bucket, Key="p2", Body=b"p")
    url = client("s3", signature_version="s3v4").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p2"}, ExpiresIn=300)
    at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    bad = url[:at] + ("1" if url[at] == "0" else "0") + url[at + 1 :]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bad)
    assert info.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in info.value.read()
