"""Rasa runs its model graph (the NLU pipeline for each message, the policies for each
action prediction) through dask's scheduler, which for a graph of a dozen nodes costs
more than most of the nodes: ordering, state bookkeeping and task submission on every
run were 12% of our Rasa CPU per message (py-spy, README "Benchmark").

`SequentialGraphRunner` is Rasa's `DaskGraphRunner` with the same nodes, inputs and
outputs, that computes the order of the nodes once per set of targets (with the
standard library's `graphlib`) and then calls them one after the other, as dask's
synchronous scheduler did. `install()` makes Rasa's message processor load models with
it; Rasa has no setting for the runner (its processor names `DaskGraphRunner`), so the
processor's name is pointed at this class. Training still uses dask.
"""
from __future__ import annotations

from graphlib import TopologicalSorter
from typing import Any, Dict, FrozenSet, List, Optional, Text, Tuple

import rasa.core.processor
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

# The nodes to call in order, each with the values it needs (in its schema's order), and
# the inputs (placeholders such as __message__) that the run must be given.
Plan = Tuple[List[Tuple[Text, List[Text]]], FrozenSet[Text]]


class SequentialGraphRunner(DaskGraphRunner):
    """`DaskGraphRunner` without dask at prediction time (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: Dict[Tuple[Text, ...], Plan] = {}

    def _plan(self, targets: Tuple[Text, ...]) -> Plan:
        plan = self._plans.get(targets)
        if plan is None:
            nodes = self._graph_schema.minimal_graph_schema(list(targets)).nodes
            order = TopologicalSorter(
                {name: set(node.needs.values()) for name, node in nodes.items()}
            ).static_order()  # raises graphlib.CycleError, as dask refuses a cycle
            calls = [(name, list(nodes[name].needs.values())) for name in order
                     if name in nodes]
            needed = frozenset(n for node in nodes.values() for n in node.needs.values()
                               if n not in nodes)
            plan = self._plans[targets] = (calls, needed)
        return plan

    def run(self, inputs: Optional[Dict[Text, Any]] = None,
            targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
        run_targets = tuple(targets if targets else self._graph_schema.target_names)
        # As in the dask graph: every value is a (name, output) pair, which is what
        # Rasa's graph nodes take and return.
        values: Dict[Text, Tuple[Text, Any]] = {}
        for name, value in (inputs or {}).items():
            if name in self._graph_schema.nodes:
                raise GraphRunError(
                    f"Input value '{name}' clashes with a node name. Make sure that none "
                    f"of the input names passed to the `run` method are the same as node "
                    f"names in the graph schema.")
            values[name] = (name, value)
        calls, needed = self._plan(run_targets)
        if not needed <= values.keys():
            raise GraphRunError(f"Inputs missing: {sorted(needed - values.keys())}.")
        try:
            for name, needs in calls:
                values[name] = self._instantiated_nodes[name](*(values[n] for n in needs))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(values[target] for target in run_targets)


def install() -> None:
    rasa.core.processor.DaskGraphRunner = SequentialGraphRunner
