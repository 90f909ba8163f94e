"""Issue 13 item 1 with boto3's default checksums (>= 1.36: CRC32 on uploads, checksum mode
and validation on downloads): the checksum is kept with the object and returned, the
download validation passes for single and multipart objects, and it fails when the
checksum is wrong — corrupted where R2 stores it (the gateway refuses the record) or on
the way (botocore refuses the body)."""
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zlib

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from conftest import unique

MIB = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


def crc32(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_put_object_checksum_is_kept_returned_and_validated(s3, bucket):
    key = unique("sum")
    body = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key=key, Body=io.BytesIO(body))
    assert put["ChecksumCRC32"] == crc32(body)
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32(body)
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key=key)
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32(body)
    assert got["Body"].read() == body
    attrs = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["Checksum", "ObjectSize"])
    assert attrs["Checksum"] == {"ChecksumCRC32": crc32(body), "ChecksumType": "FULL_OBJECT"}
    assert attrs["ObjectSize"] == len(body)


def test_multipart_upload_fileobj_download_validates(s3, bucket):
    key = unique("mp-sum")
    body = os.urandom(11 * MIB + 99)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(body), bucket, key, Config=config)
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    sums = {k: v for k, v in head.items() if k.startswith("Checksum") and k != "ChecksumType"}
    assert len(sums) == 1, head
    if head["ChecksumType"] == "FULL_OBJECT" and "ChecksumCRC32" in sums:
        assert sums["ChecksumCRC32"] == crc32(body)
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(body).digest()
    attrs = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ObjectParts", "ObjectSize"])
    assert attrs["ObjectParts"]["TotalPartsCount"] == 3
    # s3transfer creates the upload with CRC32 and sends each part's: S3 lists them.
    chunks = [body[0:5 * MIB], body[5 * MIB:10 * MIB], body[10 * MIB:]]
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in attrs["ObjectParts"]["Parts"]] == [(i + 1, len(c), crc32(c)) for i, c in enumerate(chunks)]
    assert attrs["ObjectSize"] == len(body)


def test_a_wrong_checksum_on_the_wire_fails_botocores_validation(s3, bucket):
    key = unique("wire")
    body = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key=key, Body=body)

    def lying_send(request, **_):
        # Send it as botocore would, then change the checksum the response carries.
        response = s3._endpoint.http_session.send(request)
        if "x-amz-checksum-crc32" in response.headers:
            response.headers["x-amz-checksum-crc32"] = crc32(body[1:])
        return response

    s3.meta.events.register_first("before-send.s3.GetObject", lying_send)
    try:
        with pytest.raises(Exception, match="(?i)checksum"):
            s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")["Body"].read()
    finally:
        s3.meta.events.unregister("before-send.s3.GetObject", lying_send)


@pytest.mark.skipif(not os.environ.get("S3_PERSIST"), reason="S3_PERSIST (the worker's local state) not given")
def test_a_corrupted_stored_checksum_is_refused(s3, bucket):
    key = unique("stored")
    body = os.urandom(50_000)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    flip = os.path.join(HERE, "..", "support", "r2_flip.py")
    out = subprocess.run([sys.executable, flip, os.environ["S3_PERSIST"], f"{bucket}/{key}", "3"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"flipped": True}
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert err.value.response["Error"]["Code"] == "InternalError"
