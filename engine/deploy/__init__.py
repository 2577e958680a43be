"""Deploying a project's image to AWS, and removing everything a deployment created.

- aws.py        boto3 clients from the standard credential chain (haj never writes credentials),
                HAJ_AWS_ENDPOINT_URL for a local fake (moto), AWS errors as DeployError.
- plan.py       the names and steps of a deployment, computed without any AWS call (--dry-run).
- registry.py   pushing the image with the docker SDK (ECR with a short-lived token, or any
                registry given with --registry).
- sagemaker.py  deploy / undeploy: ECR, S3, IAM role, SageMaker model, endpoint config, endpoint.
- records.py    the deployment record in the project's store (what exists, where), for status and
                for undeploy.

boto3 and docker are imported inside functions only.
"""
