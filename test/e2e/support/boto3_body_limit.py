"""boto3 against a worker with a lowered MAX_REQUEST_BODY_BYTES (test/e2e/body-limit.test.ts).

python3 boto3_body_limit.py <endpoint> <bucket> <file> <too-large-file>, credentials in the
environment. upload_file with boto3's default TransferConfig (multipart from 8 MiB, 8 MiB
parts) must succeed; put_object of <too-large-file> (one request) must fail. Prints one
JSON line with what it observed.
"""
import hashlib
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, bucket, path, too_large = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

s3.upload_file(path, bucket, "boto3/default.bin", ExtraArgs={"ServerSideEncryption": "aws:kms"})
head = s3.head_object(Bucket=bucket, Key="boto3/default.bin", PartNumber=1)
body = s3.get_object(Bucket=bucket, Key="boto3/default.bin")["Body"].read()

refused = None
try:
    with open(too_large, "rb") as f:
        s3.put_object(Bucket=bucket, Key="boto3/single.bin", Body=f, ServerSideEncryption="aws:kms")
except ClientError as e:
    refused = {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
               "max": e.response["Error"].get("MaxSizeAllowed"), "message": e.response["Error"].get("Message")}
except Exception as e:  # a connection error instead of the S3 error
    refused = {"code": type(e).__name__, "status": 0, "message": str(e)}

print(json.dumps({"sha256": hashlib.sha256(body).hexdigest(), "partsCount": head.get("PartsCount"), "part1": head["ContentLength"], "refused": refused}))
