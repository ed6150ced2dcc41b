"""
Title: How many floating-point operations a TensorFlow step does
Description: the matmul-class FLOPs of a traced ``tf.function``, counted from its graph.

A step's speed means little alone: 100 images/s is fast on a laptop and slow on a GPU. Its
*share of the machine's peak* says how much of the hardware it uses. The peak is a dense
matrix product's FLOP/s (``benchmarks/train_step.py`` measures it); the step's FLOP/s is the
FLOPs it does divided by its time. This module counts those FLOPs.

Counted from the *traced graph*, not estimated from the layers: the graph holds every
convolution and matrix product the step really runs, its backward passes as well
(``Conv2DBackpropInput``, ``Conv2DBackpropFilter``, transposed ``MatMul``), and for a
gradient penalty the second backward pass of the nested tape. The usual shortcut, "forward
FLOPs x 3", is exact only for a layer whose input also needs a gradient; the first layer of a
network needs none (TensorFlow skips it), and a double backward needs about twice more.
The graph knows; the shortcut guesses.

Per op, ``2 x multiply-adds`` (one multiply and one add each), for the ops that carry almost
all of a network's arithmetic:

    Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter   2 N Ho Wo Cout kh kw Cin
        (Ho, Wo the forward output's size, for all three: each backward is the forward's
        multiply-adds rearranged; TensorFlow's own ``Conv2D`` statistic counts the same)
    MatMul, BatchMatMul(V2/V3)                           2 [batch] M N K

Elementwise ops (activations, normalization, the optimizer's update, the penalty's norm) are
not counted: they cost memory traffic, not multiply-adds, and the peak they are compared
against (a matrix product) cannot be reached by them. So the share of the peak is the share
of the machine the *arithmetic* uses; the time the elementwise ops take shows as the gap.

Nested functions (``PartitionedCall``, ``While``, ``If``) are walked into; a ``While`` body
counts once (its trip count is not in the graph; a step here has none).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from mrigan_tf.lazy_tensorflow import tf

#: Op types counted, each a matmul-class op.
CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
#: Attributes naming a nested function in a call or control-flow op.
_FUNCTION_ATTRS = ("f", "body", "cond", "then_branch", "else_branch", "branches")


def _dims(shape) -> list[int]:
    dims = tf.TensorShape(shape).as_list()
    if dims is None or any(d is None for d in dims):
        raise ValueError(f"cannot count FLOPs of a tensor of unknown shape {shape}: trace the "
                         f"function with fully known input shapes (a fixed batch size)")
    return dims


def _conv_flops(op) -> int:
    """2 x multiply-adds of one convolution op (forward or either backward)."""
    data_format = op.get_attr("data_format").decode()
    if op.type == "Conv2D":
        filters, output = _dims(op.inputs[1].shape), _dims(op.outputs[0].shape)
    elif op.type == "Conv2DBackpropInput":     # inputs: input_sizes, filter, out_backprop
        filters, output = _dims(op.inputs[1].shape), _dims(op.inputs[2].shape)
    else:                                      # Conv2DBackpropFilter: its output is the filter's gradient
        filters, output = _dims(op.outputs[0].shape), _dims(op.inputs[2].shape)
    kh, kw, cin, cout = filters
    n, h, w = (output[0], output[1], output[2]) if data_format == "NHWC" else \
        (output[0], output[2], output[3])
    return 2 * n * h * w * cout * kh * kw * cin


def _matmul_flops(op) -> int:
    a, b = _dims(op.inputs[0].shape), _dims(op.inputs[1].shape)
    if op.type == "MatMul":
        m = a[1] if op.get_attr("transpose_a") else a[0]
        k = a[0] if op.get_attr("transpose_a") else a[1]
        n = b[0] if op.get_attr("transpose_b") else b[1]
        return 2 * m * n * k
    adj_x, adj_y = op.get_attr("adj_x"), op.get_attr("adj_y")
    m, k = (a[-1], a[-2]) if adj_x else (a[-2], a[-1])
    n = b[-2] if adj_y else b[-1]
    batch = int(np.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))) if len(a) > 2 else 1
    return 2 * batch * m * n * k


def _nested_graphs(op, graph) -> list:
    """The function graphs an op calls (a call, a loop's body, a conditional's branches)."""
    graphs = []
    for attr in _FUNCTION_ATTRS:
        try:
            value = op.get_attr(attr)
        except ValueError:
            continue
        names = [f.name for f in value] if isinstance(value, list) else [value.name]
        for name in names:
            function = graph._get_function(name)   # noqa: SLF001 (TensorFlow has no public lookup)
            if function is not None and getattr(function, "graph", None) is not None:
                graphs.append(function.graph)
            elif function is not None:
                graphs.append(_graph_of_definition(function.cached_definition, graph))
    return graphs


def _graph_of_definition(function_def, outer):
    from tensorflow.python.framework.function_def_to_graph import function_def_to_graph

    return function_def_to_graph(function_def)


def count_graph_flops(graph) -> Counter:
    """FLOPs per op type of ``graph`` and the functions it calls (a ``Counter``)."""
    counts: Counter = Counter()
    for op in graph.get_operations():
        if op.type in CONV_OPS:
            counts[op.type] += _conv_flops(op)
        elif op.type in MATMUL_OPS:
            counts[op.type] += _matmul_flops(op)
        else:
            for nested in _nested_graphs(op, graph):
                counts.update(count_graph_flops(nested))
    return counts


def function_flops(fn: Callable, *args) -> dict[str, int]:
    """FLOPs of one call of ``fn(*args)``, traced as a ``tf.function`` at the args' shapes.

    Returns ``{op type: FLOPs, ..., "total": FLOPs}``. Tracing runs nothing (no weights
    change); the shapes must be fully known, so pass concrete tensors of the real batch.
    """
    function = fn if hasattr(fn, "get_concrete_function") else tf.function(fn)
    concrete = function.get_concrete_function(*args)
    counts = count_graph_flops(concrete.graph)
    return {**dict(sorted(counts.items())), "total": int(sum(counts.values()))}


def dense_matmul_flops(m: int, n: int, k: int) -> int:
    """FLOPs of an (m x k) @ (k x n) matrix product: 2 m n k (the peak's unit)."""
    return 2 * m * n * k
