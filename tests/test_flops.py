"""The FLOPs of a traced step, counted from its graph, against known answers."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from mrigan_tf.models import make_gan
from mrigan_tf.training.flops import dense_matmul_flops, function_flops

B, N_IN, N_OUT = 5, 3, 7


@pytest.fixture(scope="module")
def dense():
    layer = keras.layers.Dense(N_OUT)
    layer.build((B, N_IN))
    return layer


def test_dense_forward_is_2bnm(dense):
    x = tf.ones((B, N_IN))
    assert function_flops(lambda x: dense(x), x) == {"MatMul": 2 * B * N_IN * N_OUT,
                                                       "total": 2 * B * N_IN * N_OUT}


def test_dense_gradient_of_input_and_kernel_is_3x_forward(dense):
    x = tf.ones((B, N_IN))

    def both(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(dense(x))
        return tape.gradient(y, [x, dense.kernel])

    def kernel_only(x):
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(dense(x))
        return tape.gradient(y, [dense.kernel])

    assert function_flops(both, x)["total"] == 3 * 2 * B * N_IN * N_OUT
    # The input needs no gradient: TensorFlow skips it, and the count sees that.
    assert function_flops(kernel_only, x)["total"] == 2 * 2 * B * N_IN * N_OUT


@pytest.mark.parametrize("stride", [1, 2])
def test_convolution_forward_and_both_gradients(stride):
    x = tf.ones((2, 8, 8, 3))
    kernel = tf.ones((3, 3, 3, 4))
    forward = 2 * 2 * (8 // stride) ** 2 * 4 * 3 * 3 * 3   # 2 N Ho Wo Cout kh kw Cin

    def conv(x, kernel):
        return tf.nn.conv2d(x, kernel, stride, "SAME")

    def both(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.reduce_sum(conv(x, kernel))
        return tape.gradient(y, [x, kernel])

    assert function_flops(conv, x, kernel) == {"Conv2D": forward, "total": forward}
    assert function_flops(both, x, kernel) == {
        "Conv2D": forward, "Conv2DBackpropFilter": forward, "Conv2DBackpropInput": forward,
        "total": 3 * forward}


def test_nested_function_is_counted():
    inner = tf.function(lambda a, b: tf.matmul(a, b))
    a, b = tf.ones((4, 6)), tf.ones((6, 5))
    assert function_flops(lambda a, b: inner(a, b) + inner(a, b), a, b)["total"] == \
        2 * dense_matmul_flops(4, 5, 6)


def test_unknown_batch_size_is_refused():
    fn = tf.function(lambda x: tf.matmul(x, tf.ones((3, 2))),
                     input_signature=[tf.TensorSpec((None, 3))])
    with pytest.raises(ValueError, match="fixed batch size"):
        function_flops(fn)


def test_gan_step_flops_follow_the_method():
    """A cWGAN-GP step: n_critic x (critic update + penalty) + one generator update. The
    count grows with n_critic by one critic update's FLOPs, and the lazy penalty removes
    the penalty's share from the update that skips it."""
    real = tf.zeros((4, 8, 8, 2))
    labels = tf.zeros((4,), tf.int32)

    model = make_gan("cwgan-gp", (8, 8, 2), width=4, latent_dim=8, seed=0)
    model.compile(jit_compile=False)

    def count(n_critic, gp_every=1):
        # The step reads both at trace time; one model, traced three ways (tracing runs nothing).
        model.n_critic, model.gp_every = n_critic, gp_every
        return function_flops(lambda r, l: model.train_step((r, l)), real, labels)["total"]

    one, two = count(n_critic=1), count(n_critic=2)
    per_critic_update = two - one
    assert per_critic_update > 0
    lazy = count(n_critic=2, gp_every=2)   # the second critic update draws no penalty
    penalty = two - lazy
    assert one < lazy < two
    # The penalty (a double backward through the critic) costs less than a critic update
    # with its penalty, and more than nothing.
    assert 0 < penalty < per_critic_update
