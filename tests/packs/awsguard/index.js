"use strict";
// AWSGuard with every policy on (advisory, its own default), as a team would run it beside ps019.
const { AwsGuard } = require("@pulumi/awsguard");

new AwsGuard({ all: "advisory" });
