#!/usr/bin/env python3
"""Offline checks of everything under deploy/ (run by `cargo xtask deploy-check`).

Usage: check.py --helm PATH [--compose CMD]

Each check prints one line; any failure exits 1 at the end. Nothing here
talks to AWS or a cluster: CloudFormation is created in moto's server,
Kubernetes manifests are validated against the bundled JSON schemas of
kubernetes-validate, the ECS definitions against botocore's service model.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FAILED = []


def check(name, ok, detail=""):
    print(("ok    " if ok else "FAIL  ") + name + (f": {detail}" if detail and not ok else ""))
    if not ok:
        FAILED.append(name)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- CloudFormation

def cloudformation():
    tpl = os.path.join(HERE, "cloudformation", "gateway.yaml")
    r = run(["cfn-lint", tpl])
    check("cfn-lint cloudformation/gateway.yaml", r.returncode == 0, r.stdout + r.stderr)

    tpl_text = open(tpl).read()
    lb = yaml.load(open(tpl), Loader=CfnLoader)["Resources"]["LoadBalancer"]["Properties"]
    idle = [a for a in lb["LoadBalancerAttributes"] if a["Key"] == "idle_timeout.timeout_seconds"]
    check("ALB idle timeout is the IdleTimeoutSeconds parameter (default 900 s, not the ALB's 60 s)",
          idle and idle[0]["Value"] == {"Ref": "IdleTimeoutSeconds"})
    check("no ARN with a literal partition (every ARN uses ${AWS::Partition})",
          re.search(r"arn:aws[a-z-]*:", tpl_text) is None)

    import boto3

    port = free_port()
    moto = subprocess.Popen(["moto_server", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        env = dict(aws_access_key_id="testing", aws_secret_access_key="testing",
                   endpoint_url=f"http://127.0.0.1:{port}")
        body = open(tpl).read()
        base = [
            {"ParameterKey": "ImageUri", "ParameterValue": "123456789012.dkr.ecr.us-east-1.amazonaws.com/oai-gateway:0.1.0"},
            {"ParameterKey": "SageMakerEndpointNames", "ParameterValue": "llm-a,llm-b"},
            {"ParameterKey": "BedrockModelIds", "ParameterValue": "anthropic.claude-3-7-sonnet-20250219-v1:0"},
            {"ParameterKey": "AlarmEmail", "ParameterValue": "ops@example.com"},
        ]
        for region, label, extra in [
            ("us-east-1", "new VPC", []),
            ("cn-north-1", "new VPC, aws-cn partition", []),
            ("us-west-2", "existing VPC, given secret",
             [{"ParameterKey": "VpcId", "ParameterValue": "VPC"},
              {"ParameterKey": "PublicSubnetIds", "ParameterValue": "SUBNETS"},
              {"ParameterKey": "PrivateSubnetIds", "ParameterValue": "SUBNETS"},
              {"ParameterKey": "ApiKeySecretArn",
               "ParameterValue": "arn:aws:secretsmanager:us-west-2:123456789012:secret:gw-keys-AbCdEf"}]),
        ]:
            cf = boto3.client("cloudformation", region_name=region, **env)
            if any(p["ParameterValue"] == "VPC" for p in extra):
                ec2 = boto3.client("ec2", region_name=region, **env)
                vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
                subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24",
                                             AvailabilityZone=f"{region}{z}")["Subnet"]["SubnetId"]
                           for i, z in enumerate("ab")]
                extra = [dict(p, ParameterValue={"VPC": vpc, "SUBNETS": ",".join(subnets)}.get(
                    p["ParameterValue"], p["ParameterValue"])) for p in extra]
            name = "gw-" + re.sub(r"[^a-z0-9]", "", label.lower())[:20]
            cf.create_stack(StackName=name, TemplateBody=body, Parameters=base + extra,
                            Capabilities=["CAPABILITY_IAM"])
            status = wait_stack(cf, name)
            resources = cf.list_stack_resources(StackName=name)["StackResourceSummaries"]
            types = sorted({x["ResourceType"] for x in resources})
            check(f"CloudFormation stack in moto ({region}, {label}) reaches CREATE_COMPLETE",
                  status == "CREATE_COMPLETE", status)
            # moto's CloudFormation models most types; the ones it does not
            # (scaling policies, alarms, the secret, the bucket policy) are
            # created without a type or id: counted, not checked.
            needed = ["AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::ECS::Cluster",
                      "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup",
                      "AWS::ElasticLoadBalancingV2::Listener", "AWS::IAM::Role", "AWS::SNS::Topic",
                      "AWS::Logs::LogGroup", "AWS::S3::Bucket"] + ([] if extra else ["AWS::EC2::VPC"])
            missing = [t for t in needed if t not in types]
            untyped = sum(1 for x in resources if not x["ResourceType"])
            check(f"  {len(resources)} resources listed ({untyped} of types moto does not model), incl. "
                  "service, task definition, cluster, ALB, target group, listener, roles, topic, log group, log bucket"
                  + ("" if extra else ", VPC"),
                  not missing, f"missing {missing}")
            outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in
                       cf.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])}
            check("  output BaseUrl is an http(s) /v1 URL",
                  re.match(r"^https?://.+/v1$", outputs.get("BaseUrl", "")) is not None, str(outputs))
    finally:
        moto.terminate()
        moto.wait()


def wait_stack(cf, name):
    for _ in range(120):
        s = cf.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not s.endswith("IN_PROGRESS"):
            return s
        time.sleep(0.5)
    return "TIMEOUT"


def as_list(v):
    return v if isinstance(v, list) else [v]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


# ---------------------------------------------------------------- Helm

def helm(helm_bin):
    chart = os.path.join(HERE, "helm", "oai-gateway")
    prod = os.path.join(chart, "values-production.yaml")
    for label, extra in [("default values", []), ("production values", ["-f", prod])]:
        r = run([helm_bin, "lint", chart, "--strict"] + extra)
        check(f"helm lint --strict ({label})", r.returncode == 0, r.stdout + r.stderr)
        r = run([helm_bin, "template", "gw", chart] + extra)
        check(f"helm template ({label})", r.returncode == 0, r.stderr)
        if r.returncode != 0:
            continue
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        with tempfile.TemporaryDirectory() as tmp:
            core = [d for d in docs if d["kind"] != "ServiceMonitor"]
            path = os.path.join(tmp, "manifests.yaml")
            with open(path, "w") as f:
                yaml.safe_dump_all(core, f)
            v = run(["kubernetes-validate", "--strict", "--quiet", path])
            check(f"  {len(core)} manifests valid against the Kubernetes schemas "
                  f"({', '.join(sorted(d['kind'] for d in core))})",
                  v.returncode == 0, v.stdout + v.stderr)
        dep = next(d for d in docs if d["kind"] == "Deployment")
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        values = yaml.safe_load(open(prod)) if extra else yaml.safe_load(open(os.path.join(chart, "values.yaml")))
        grace = pod["terminationGracePeriodSeconds"]
        check("  grace period above preStop pause + drain",
              grace > values["drainSeconds"] + values["preStopSleepSeconds"], str(grace))
        check("  non-root, read-only root filesystem, no privilege escalation",
              pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
              and not c["securityContext"]["allowPrivilegeEscalation"])
        check("  probes on /ping and /health",
              c["livenessProbe"]["httpGet"]["path"] == "/ping" and c["readinessProbe"]["httpGet"]["path"] == "/health")
        check("  preStop runs the binary (no shell in the image)",
              c["lifecycle"]["preStop"]["exec"]["command"][:2] == ["/usr/local/bin/gateway", "--sleep"])
        cm = next(d for d in docs if d["kind"] == "ConfigMap")
        check("  the config map's TOML parses", toml_ok(cm["data"]["gateway.toml"]), cm["data"]["gateway.toml"])
        if extra:
            sa = next(d for d in docs if d["kind"] == "ServiceAccount")
            check("  IRSA role annotation on the service account",
                  sa["metadata"]["annotations"].get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::"))
            sm = [d for d in docs if d["kind"] == "ServiceMonitor"]
            ok = len(sm) == 1 and sm[0]["apiVersion"] == "monitoring.coreos.com/v1" and \
                sm[0]["spec"]["endpoints"][0]["path"] == "/metrics" and \
                sm[0]["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
            check("  ServiceMonitor (a CRD: fields checked here) scrapes /metrics of the pods", ok)
            check("  keys from the existing Secret",
                  any(e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "oai-gateway-keys"
                      for e in c["env"]))
    for label, bad in [("a negative drain", ["--set", "drainSeconds=-1"]),
                       ("a listen line in the config", ["--set-string", "config=listen = \"0.0.0.0:1\""]),
                       ("an unknown value", ["--set", "replicas=3"])]:
        r = run([helm_bin, "template", "gw", chart] + bad)
        check(f"values.schema.json refuses {label}", r.returncode != 0, r.stdout[:200])


def toml_ok(text):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        return True
    try:
        tomllib.loads(text)
        return True
    except Exception:
        return False


# ---------------------------------------------------------------- compose

def compose(cmd):
    f = os.path.join(HERE, "compose.yaml")
    for label, extra in [("default", []), ("demo profile", ["--profile", "demo"])]:
        r = run(cmd + ["-f", f] + extra + ["config"])
        check(f"{' '.join(cmd)} config ({label})", r.returncode == 0, r.stderr)
        if r.returncode == 0:
            services = yaml.safe_load(r.stdout)["services"]
            want = {"gateway", "postgres", "redis", "prometheus", "grafana"} | (
                {"demo-upstreams", "gateway-demo"} if extra else set())
            check(f"  services {sorted(want)}", want <= set(services), str(sorted(services)))
    doc = yaml.safe_load(open(f))
    for svc in ("gateway", "gateway-demo"):
        for host, path in [(v.split(":")[0], v.split(":")[1]) for v in doc["services"][svc].get("volumes", [])]:
            check(f"  {svc} mounts {host}, which exists", os.path.exists(os.path.join(HERE, host)))
    prom = yaml.safe_load(open(os.path.join(HERE, "prometheus", "prometheus.yml")))
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    check("  Prometheus scrapes both gateways' /metrics",
          prom["scrape_configs"][0]["metrics_path"] == "/metrics" and
          {"gateway:8080", "gateway-demo:8080"} <= set(targets))


# ---------------------------------------------------------------- ECS and IAM

def ecs():
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("ecs")
    validator = ParamValidator()
    for op, file in [("RegisterTaskDefinition", "task-definition.json"), ("CreateService", "service.json")]:
        params = json.load(open(os.path.join(HERE, "ecs", file)))
        report = validator.validate(params, model.operation_model(op).input_shape)
        check(f"ecs/{file} is valid {op} input (botocore)", not report.has_errors(), report.generate_report())
    td = json.load(open(os.path.join(HERE, "ecs", "task-definition.json")))
    c = td["containerDefinitions"][0]
    check("  health check is `gateway --healthcheck`, logs go to awslogs",
          c["healthCheck"]["command"][1:] == ["/usr/local/bin/gateway", "--healthcheck"]
          and c["logConfiguration"]["logDriver"] == "awslogs")
    svc = json.load(open(os.path.join(HERE, "ecs", "service.json")))
    check("  deployment circuit breaker with rollback",
          svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True})
    policies = [os.path.join(HERE, "ecs", p) for p in ("task-role-policy.json", "execution-role-policy.json")]
    tpl = yaml.load(open(os.path.join(HERE, "cloudformation", "gateway.yaml")), Loader=CfnLoader)
    statements = [(os.path.basename(p), s) for p in policies for s in json.load(open(p))["Statement"]]
    for res in tpl["Resources"].values():
        if res["Type"] == "AWS::IAM::Role":
            for pol in res["Properties"].get("Policies", []):
                for s in pol["PolicyDocument"]["Statement"]:
                    if isinstance(s, dict) and "Sid" in s:
                        statements.append(("cloudformation", s))
                    elif isinstance(s, dict):  # Fn::If: both branches
                        for branch in list(s.values())[0][1:]:
                            if isinstance(branch, dict) and "Sid" in branch:
                                statements.append(("cloudformation", branch))
    star_actions = [(f, s.get("Sid")) for f, s in statements
                    if any("*" in a for a in as_list(s["Action"]))]
    check(f"no IAM action with * ({len(statements)} statements)", not star_actions, str(star_actions))
    star_res = [(f, s.get("Sid")) for f, s in statements if s.get("Resource") == "*"]
    unexplained = [x for x in star_res if "NoResourceLevelPermissions" not in (x[1] or "")]
    check("  a * resource only where the API has no resource-level permissions (said in its Sid)",
          not unexplained, str(unexplained))
    task = json.load(open(policies[0]))
    actions = sorted(a for s in task["Statement"] for a in as_list(s["Action"]))
    check("  task role: exactly the invoke actions and GetSecretValue",
          actions == sorted(["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream",
                             "bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream",
                             "secretsmanager:GetSecretValue"]), str(actions))


class CfnLoader(yaml.SafeLoader):
    pass


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        v = loader.construct_sequence(node, deep=True)
    else:
        v = loader.construct_mapping(node, deep=True)
    return {"Fn::" + suffix if suffix not in ("Ref", "Condition") else suffix: v}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--helm", required=True)
    ap.add_argument("--compose", default="docker-compose")
    a = ap.parse_args()
    cloudformation()
    helm(a.helm)
    compose(a.compose.split())
    ecs()
    if FAILED:
        print(f"\n{len(FAILED)} check(s) failed")
        sys.exit(1)
    print("\nevery deploy check passed")


if __name__ == "__main__":
    main()
