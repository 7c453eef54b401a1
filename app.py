#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth -c env=dev`` (or ``python app.py`` with CDK_CONTEXT_JSON).

One set of stacks per environment, built from the typed configuration in
rankops.toml; tags and cdk-nag are applied once in ``infra.app_builder``.
"""

import sys

from aws_cdk import App

from infra.app_builder import build
from rankops.errors import RankopsError

app = App()
try:
    build(app)
except RankopsError as err:  # one line on stderr and exit status 2, as the rankops CLI does
    print(f"rankops: error: {err}", file=sys.stderr)
    sys.exit(2)
app.synth()
