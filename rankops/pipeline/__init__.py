"""The pipeline: one Amazon States Language definition, executed by AWS Step Functions in
the cloud and, unchanged, by moto's Step Functions interpreter on a laptop."""
