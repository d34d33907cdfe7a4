"""Local stack pieces for running kong-aws-masker without Docker: the Claude stub and the `up` orchestration."""  # noqa: E501
