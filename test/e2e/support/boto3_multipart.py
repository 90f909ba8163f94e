"""boto3 multipart upload with unequal parts (5, 7, then 3 MiB), SSE-KMS, read back.

Run by test/e2e/multipart.test.ts: python3 boto3_multipart.py <endpoint> <bucket> <key>
with credentials in the environment. Prints one JSON line with what it observed.
"""
import hashlib
import json
import os
import sys

import boto3
from botocore.config import Config

endpoint, bucket, key = sys.argv[1:4]
MiB = 1024 * 1024
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))

parts = [os.urandom(5 * MiB), os.urandom(7 * MiB), os.urandom(3 * MiB)]
whole = b"".join(parts)
created = s3.create_multipart_upload(Bucket=bucket, Key=key, ServerSideEncryption="aws:kms", ContentType="application/x-boto3", Metadata={"via": "boto3"})
upload_id = created["UploadId"]
done_parts = []
for number, body in enumerate(parts, start=1):
    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
    done_parts.append({"PartNumber": number, "ETag": r["ETag"], "sse": r.get("ServerSideEncryption")})
listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
completed = s3.complete_multipart_upload(
    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in done_parts]}
)
got = s3.get_object(Bucket=bucket, Key=key)
body = got["Body"].read()
boundary = 5 * MiB
ranged = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={boundary - 100}-{boundary + 99}")["Body"].read()
part2 = s3.get_object(Bucket=bucket, Key=key, PartNumber=2)
print(json.dumps({
    "createSse": created.get("ServerSideEncryption"),
    "createKeyId": created.get("SSEKMSKeyId"),
    "partSse": [p["sse"] for p in done_parts],
    "listedSizes": [p["Size"] for p in listed["Parts"]],
    "etag": completed["ETag"],
    "sha256Sent": hashlib.sha256(whole).hexdigest(),
    "sha256Got": hashlib.sha256(body).hexdigest(),
    "getSse": got.get("ServerSideEncryption"),
    "getKeyId": got.get("SSEKMSKeyId"),
    "contentType": got.get("ContentType"),
    "metadata": got.get("Metadata"),
    "rangeOk": ranged == whole[boundary - 100:boundary + 100],
    "part2Ok": part2["Body"].read() == parts[1],
    "partsCount": part2.get("PartsCount"),
}))
