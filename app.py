#!/usr/bin/env python3
"""CDK entry point: App -> configs -> one Stage per environment -> cdk-nag -> synth."""

import aws_cdk as cdk

from config.environments import ENVIRONMENTS
from stacks.cdk_app import define_app, require_complete_context

app = cdk.App()
define_app(app, ENVIRONMENTS)
require_complete_context(app.synth().directory)
