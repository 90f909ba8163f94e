"""Issue 13 with boto3 (default checksums): S3-style part ETags and object tagging."""
import hashlib
import os

from conftest import unique

MIB = 1024 * 1024


def md5(data):
    return hashlib.md5(data).digest()


def test_part_etags_are_md5_and_resent_parts_complete_with_the_first_etag(s3, bucket):
    key = unique("etags")
    p1, p2 = os.urandom(5 * MIB), os.urandom(77_777)
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ServerSideEncryption="aws:kms")["UploadId"]
    first = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=p1)["ETag"]
    assert first == '"%s"' % md5(p1).hex()
    again = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=p1)["ETag"]
    assert again == first
    second = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=p2)["ETag"]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": second}]},
    )
    expected = '"%s-2"' % hashlib.md5(md5(p1) + md5(p2)).hexdigest()
    assert done["ETag"] == expected
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"] == expected
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == p1 + p2


def test_object_tagging_round_trip(s3, bucket):
    key = unique("tags")
    s3.put_object(Bucket=bucket, Key=key, Body=b"tagged", ServerSideEncryption="aws:kms", Tagging="team=storage&note=hello world")
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
        {"Key": "note", "Value": "hello world"},
        {"Key": "team", "Value": "storage"},
    ]
    assert s3.get_object(Bucket=bucket, Key=key)["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert s3.head_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "1"
    s3.delete_object_tagging(Bucket=bucket, Key=key)
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key=key)


def test_object_tagging_limits(s3, bucket):
    import botocore.exceptions
    import pytest

    key = unique("limits")
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": "k" * 129, "Value": "v"}]})
    assert e.value.response["Error"]["Code"] == "InvalidTag"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
