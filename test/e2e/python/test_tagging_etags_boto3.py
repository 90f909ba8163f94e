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
