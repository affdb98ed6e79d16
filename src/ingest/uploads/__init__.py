"""Big files through a gateway: resumable tus uploads and presigned S3 multipart uploads."""
