#!/usr/bin/env python3
"""Validates Kubernetes objects offline against the 1.33 OpenAPI v2 document.

  validate_k8s.py SWAGGER.json.gz FILE.yaml...   (FILE "-": stdin)

Every object's kind/apiVersion is looked up by the definitions' x-kubernetes-group-version-kind;
each definition is closed (additionalProperties: false) so unknown fields fail, required fields
and types are checked. Objects of kinds the API does not define (CRDs: ServiceMonitor) are
counted and reported as not checked. Exit 0 when every checked object is valid.
"""
import gzip
import json
import sys
import warnings

import jsonschema
import yaml


def load_schema(path):
    with gzip.open(path, "rt") as f:
        doc = json.load(f)
    defs = doc["definitions"]
    # Types the API serialises loosely: int-or-string, quantities (numbers allowed in YAML).
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["string", "integer"]}
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"type": ["string", "number"]}
    for d in defs.values():
        if "properties" in d and "additionalProperties" not in d:
            d["additionalProperties"] = False
    by_gvk = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            api = gvk["version"] if not gvk["group"] else gvk["group"] + "/" + gvk["version"]
            by_gvk[(api, gvk["kind"])] = name
    return {"definitions": defs}, by_gvk


def main(argv):
    root, by_gvk = load_schema(argv[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resolver = jsonschema.RefResolver.from_schema(root)
    validators = {}
    checked, unchecked, failed = 0, [], 0
    for path in argv[2:]:
        text = sys.stdin.read() if path == "-" else open(path).read()
        for obj in yaml.safe_load_all(text):
            if not obj:
                continue
            key = (obj.get("apiVersion"), obj.get("kind"))
            where = "%s %s/%s" % (path, key[1], obj.get("metadata", {}).get("name"))
            name = by_gvk.get(key)
            if name is None:
                unchecked.append(where)
                continue
            if name not in validators:
                validators[name] = jsonschema.Draft4Validator(
                    {"$ref": "#/definitions/" + name}, resolver=resolver)
            errors = sorted(validators[name].iter_errors(obj), key=lambda e: list(e.path))
            checked += 1
            for e in errors[:5]:
                print("INVALID %s at %s: %s" % (where, "/".join(map(str, e.path)), e.message[:300]))
            if errors:
                failed += 1
    for u in unchecked:
        print("not in the Kubernetes API (CRD), not checked: " + u)
    print("%d objects valid, %d invalid, %d not checked" % (checked - failed, failed, len(unchecked)))
    return 1 if failed or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
