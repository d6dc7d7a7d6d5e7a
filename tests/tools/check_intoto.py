"""Validates in-toto Statement v1 files with an SLSA v1 provenance predicate
against the published shapes: the protobuf definitions of the in-toto
attestation framework (PyPI in-toto-attestation), parsed strictly (an unknown
or mistyped field is an error), plus the fields SLSA v1 marks REQUIRED.

Usage: python check_intoto.py FILE...   Exit 0 if all are valid, 1 otherwise.
"""

import json
import sys

from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

SLSA_V1 = "https://slsa.dev/provenance/v1"


def check(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    proto = json_format.Parse(text, statement_pb2.Statement())
    Statement.copy_from_pb(proto).validate()
    if proto.predicate_type != SLSA_V1:
        raise ValueError(f"predicateType is {proto.predicate_type!r}, not {SLSA_V1}")
    predicate = json.loads(text)["predicate"]
    provenance = json_format.ParseDict(predicate, provenance_pb2.Provenance())
    definition = provenance.build_definition
    if not definition.build_type:
        raise ValueError("buildDefinition.buildType is required")
    if not definition.external_parameters:
        raise ValueError("buildDefinition.externalParameters is required")
    for rd in list(definition.resolved_dependencies) + list(provenance.run_details.byproducts):
        ResourceDescriptor.copy_from_pb(rd).validate()
    if not provenance.run_details.builder.id:
        raise ValueError("runDetails.builder.id is required")
    metadata = provenance.run_details.metadata
    if metadata.HasField("started_on") and metadata.HasField("finished_on"):
        if metadata.started_on.ToDatetime() > metadata.finished_on.ToDatetime():
            raise ValueError("startedOn is after finishedOn")


def main(paths):
    ok = True
    for path in paths:
        try:
            check(path)
            print(f"{path}: valid in-toto Statement v1 / SLSA provenance v1")
        except Exception as error:  # every failure is a verdict, not a crash
            print(f"{path}: INVALID: {error}")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
