"""Optimizers: one step worked by hand, several steps against the pseudo-code in
each docstring, several steps against torch.optim (where installed), state
round trips, hyperparameter validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import scratchnn as snn


def approx(values):
    return pytest.approx(values, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------- by hand
# Shared start for the hand-worked cases: p = [1, -2, 0.3], g = [0.5, -1, 0].
P0 = [1.0, -2.0, 0.3]
G1 = [0.5, -1.0, 0.0]
G2 = [1.0, 1.0, 1.0]


def steps(opt, grads, p0=P0):
    p = np.array(p0, dtype=np.float64)
    for g in grads:
        opt.step(p, np.array(g, dtype=np.float64))
    return p


def test_sgd_plain_by_hand():
    # p - lr * g = [1 - 0.1*0.5, -2 + 0.1*1, 0.3 - 0] = [0.95, -1.9, 0.3]
    assert steps(snn.SGD(lr=0.1), [G1]) == approx([0.95, -1.9, 0.3])


def test_sgd_momentum_by_hand():
    # step 1: v = g1 = [0.5, -1, 0];            p = [0.95, -1.9, 0.3]
    # step 2: v = 0.9 * v + g2 = [1.45, 0.1, 1]; p = [0.95 - 0.145, -1.9 - 0.01, 0.3 - 0.1]
    assert steps(snn.SGD(lr=0.1, momentum=0.9), [G1]) == approx([0.95, -1.9, 0.3])
    assert steps(snn.SGD(lr=0.1, momentum=0.9), [G1, G2]) == approx([0.805, -1.91, 0.2])


def test_sgd_nesterov_by_hand():
    # step 1: v = g1;  d = g1 + 0.9 * v = [0.95, -1.9, 0];  p = [0.905, -1.81, 0.3]
    # step 2: v = [1.45, 0.1, 1];  d = g2 + 0.9 * v = [2.305, 1.09, 1.9]
    #         p = [0.905 - 0.2305, -1.81 - 0.109, 0.3 - 0.19] = [0.6745, -1.919, 0.11]
    opt = snn.SGD(lr=0.1, momentum=0.9, nesterov=True)
    assert steps(opt, [G1, G2]) == approx([0.6745, -1.919, 0.11])


def test_sgd_weight_decay_by_hand():
    # g' = g + 0.1 * p = [0.5 + 0.1, -1 - 0.2, 0 + 0.03] = [0.6, -1.2, 0.03]
    # p - 0.1 * g' = [0.94, -1.88, 0.297]
    assert steps(snn.SGD(lr=0.1, weight_decay=0.1), [G1]) == approx([0.94, -1.88, 0.297])


def test_adam_first_step_by_hand():
    # m = 0.1 g, v = 0.001 g^2;  m_hat = g, v_hat = g^2;  p -= lr * g / (|g| + eps),
    # about lr * sign(g), and exactly 0 where g = 0:
    # [1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 1 / (1 + 1e-8), 0.3]
    assert steps(snn.Adam(lr=0.1), [G1]) == approx([0.900000002, -1.900000001, 0.3])


def test_adam_l2_weight_decay_by_hand():
    # g' = g + 0.1 p = [0.6, -1.2, 0.03]; the first Adam step moves by lr * g' / (|g'| + eps):
    # [1 - 0.1 * 0.6 / (0.6 + 1e-8), -2 + 0.1 * 1.2 / (1.2 + 1e-8), 0.3 - 0.1 * 0.03 / (0.03 + 1e-8)]
    p = steps(snn.Adam(lr=0.1, weight_decay=0.1), [G1])
    assert p == approx([0.9000000016666666, -1.9000000008333333, 0.20000003333332222])


def test_adamw_first_step_by_hand():
    # p *= 1 - lr * wd = 0.999, then the Adam step of about lr * sign(g):
    # [0.999 - 0.1 * 0.5 / (0.5 + 1e-8), -1.998 + 0.1 / (1 + 1e-8), 0.3 * 0.999]
    p = steps(snn.AdamW(lr=0.1, weight_decay=0.01), [G1])
    assert p == approx([0.899000002, -1.898000001, 0.2997])


def test_rmsprop_by_hand():
    # s = 0.1 g^2 = [0.025, 0.1, 0];  g / (sqrt(s) + eps) = [sqrt(10), -sqrt(10), 0] (eps aside)
    # p = [1 - 0.01 * 0.5 / (sqrt(0.025) + 1e-8), -2 + 0.01 / (sqrt(0.1) + 1e-8), 0.3]
    p = steps(snn.RMSProp(lr=0.01, rho=0.9), [G1])
    assert p == approx([0.968377225398316, -1.9683772243983162, 0.3])


def test_rmsprop_momentum_by_hand():
    # step 1: b = g1 / (sqrt(s1) + eps) = [3.162277460168392, -3.1622775601683824, 0]
    #         p = p0 - 0.01 b (the same as without momentum)
    # step 2: s2 = 0.9 s1 + 0.1 g2^2 = [0.1225, 0.19, 0.1]
    #         b = 0.9 b + g2 / (sqrt(s2) + eps)
    #           = [2.846049714 + 1/0.35, -2.846049804 + 1/sqrt(0.19), 0 + 1/sqrt(0.1)]
    #           = [5.70319248966176, -0.5518925180775041, 3.162277560168...]
    #         p = p1 - 0.01 b
    opt = snn.RMSProp(lr=0.01, rho=0.9, momentum=0.9)
    p = steps(opt, [G1, G2])
    assert p[:2] == approx([0.9113453005016985, -1.9628582992175412])
    assert p[2] == pytest.approx(0.3 - 0.01 / (math.sqrt(0.1) + 1e-8), rel=1e-12)


def test_adagrad_by_hand():
    # step 1: s = g1^2 = [0.25, 1, 0];  p = p0 - 0.1 * g1 / (sqrt(s) + 1e-10)
    #           = [0.90000000002, -1.90000000001, 0.3]
    # step 2: s = [1.25, 2, 1];  p -= 0.1 * [1 / sqrt(1.25), 1 / sqrt(2), 1 / 1]
    #           = [0.90000000002 - 0.0894427191, -1.90000000001 - 0.0707106781,
    #              0.3 - 0.1 / (1 + 1e-10) = 0.20000000001]
    opt = snn.AdaGrad(lr=0.1)
    assert steps(opt, [G1]) == approx([0.90000000002, -1.90000000001, 0.3])
    opt = snn.AdaGrad(lr=0.1)
    assert steps(opt, [G1, G2]) == approx([0.8105572809280084, -1.9707106781236547, 0.20000000001])


def test_lr_can_be_changed_between_steps():
    # SGD: step 1 with lr 0.1 -> [0.95, -1.9, 0.3]; step 2 with lr 0.5 and g2 = [1, 1, 1]
    #   -> [0.45, -2.4, -0.2]
    opt = snn.SGD(lr=0.1)
    p = steps(opt, [G1])
    opt.lr = 0.5
    opt.step(p, np.array(G2))
    assert p == approx([0.45, -2.4, -0.2])
    # Adam: after a first step, an lr of 0 would leave p unchanged; a tiny lr moves
    # p by exactly that much less than lr 0.1 would.
    a, b = snn.Adam(lr=0.1), snn.Adam(lr=0.1)
    pa, pb = steps(a, [G1]), steps(b, [G1])
    a.lr = 1e-3
    a.step(pa, np.array(G2))
    b.step(pb, np.array(G2))
    moved_a, moved_b = pa - steps(snn.Adam(lr=0.1), [G1]), pb - steps(snn.Adam(lr=0.1), [G1])
    np.testing.assert_allclose(moved_a, moved_b / 100, rtol=1e-12)


# ------------------------------------------------ several steps vs the docstrings
def ref_sgd(p, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    v = np.zeros_like(p)
    for grad in grads:
        g = grad + weight_decay * p
        if momentum > 0:
            v = momentum * v + g
            d = g + momentum * v if nesterov else v
        else:
            d = g
        p = p - lr * d
    return p


def ref_adagrad(p, grads, lr, eps=1e-10, weight_decay=0.0, initial_accumulator_value=0.0):
    s = np.full_like(p, initial_accumulator_value)
    for grad in grads:
        g = grad + weight_decay * p
        s = s + g ** 2
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


def ref_rmsprop(p, grads, lr, rho=0.9, eps=1e-8, momentum=0.0, weight_decay=0.0):
    s = np.zeros_like(p)
    b = np.zeros_like(p)
    for grad in grads:
        g = grad + weight_decay * p
        s = rho * s + (1 - rho) * g ** 2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(s) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (np.sqrt(s) + eps)
    return p


def ref_adam(p, grads, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, grad in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
            g = grad
        else:
            g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


# name -> (scratchnn optimizer, docstring reference, torch optimizer (class name, kwargs))
CONFIGS = {
    "sgd": (lambda: snn.SGD(lr=0.1),
            lambda p, gs: ref_sgd(p, gs, 0.1),
            ("SGD", dict(lr=0.1))),
    "sgd-momentum": (lambda: snn.SGD(lr=0.05, momentum=0.9),
                     lambda p, gs: ref_sgd(p, gs, 0.05, momentum=0.9),
                     ("SGD", dict(lr=0.05, momentum=0.9))),
    "sgd-nesterov": (lambda: snn.SGD(lr=0.05, momentum=0.8, nesterov=True),
                     lambda p, gs: ref_sgd(p, gs, 0.05, momentum=0.8, nesterov=True),
                     ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True))),
    "sgd-weight-decay": (lambda: snn.SGD(lr=0.1, weight_decay=0.05),
                         lambda p, gs: ref_sgd(p, gs, 0.1, weight_decay=0.05),
                         ("SGD", dict(lr=0.1, weight_decay=0.05))),
    "sgd-momentum-weight-decay": (
        lambda: snn.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p, gs: ref_sgd(p, gs, 0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01))),
    "adam": (lambda: snn.Adam(lr=0.01),
             lambda p, gs: ref_adam(p, gs, 0.01),
             ("Adam", dict(lr=0.01))),
    "adam-betas": (lambda: snn.Adam(lr=0.02, beta1=0.5, beta2=0.9, eps=1e-6),
                   lambda p, gs: ref_adam(p, gs, 0.02, beta1=0.5, beta2=0.9, eps=1e-6),
                   ("Adam", dict(lr=0.02, betas=(0.5, 0.9), eps=1e-6))),
    "adam-weight-decay": (lambda: snn.Adam(lr=0.01, weight_decay=0.1),
                          lambda p, gs: ref_adam(p, gs, 0.01, weight_decay=0.1),
                          ("Adam", dict(lr=0.01, weight_decay=0.1))),
    "adamw": (lambda: snn.AdamW(lr=0.01, weight_decay=0.1),
              lambda p, gs: ref_adam(p, gs, 0.01, weight_decay=0.1, decoupled=True),
              ("AdamW", dict(lr=0.01, weight_decay=0.1))),
    "adamw-default": (lambda: snn.AdamW(),
                      lambda p, gs: ref_adam(p, gs, 0.001, weight_decay=0.01, decoupled=True),
                      ("AdamW", dict(lr=0.001))),
    "rmsprop": (lambda: snn.RMSProp(lr=0.01, rho=0.8),
                lambda p, gs: ref_rmsprop(p, gs, 0.01, rho=0.8),
                ("RMSprop", dict(lr=0.01, alpha=0.8, eps=1e-8))),
    "rmsprop-momentum": (lambda: snn.RMSProp(lr=0.01, rho=0.9, momentum=0.7),
                         lambda p, gs: ref_rmsprop(p, gs, 0.01, rho=0.9, momentum=0.7),
                         ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-8, momentum=0.7))),
    "rmsprop-weight-decay": (
        lambda: snn.RMSProp(lr=0.01, rho=0.9, momentum=0.5, weight_decay=0.1),
        lambda p, gs: ref_rmsprop(p, gs, 0.01, rho=0.9, momentum=0.5, weight_decay=0.1),
        ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-8, momentum=0.5, weight_decay=0.1))),
    "adagrad": (lambda: snn.AdaGrad(lr=0.1),
                lambda p, gs: ref_adagrad(p, gs, 0.1),
                ("Adagrad", dict(lr=0.1))),
    "adagrad-options": (
        lambda: snn.AdaGrad(lr=0.1, eps=1e-6, weight_decay=0.05, initial_accumulator_value=0.2),
        lambda p, gs: ref_adagrad(p, gs, 0.1, eps=1e-6, weight_decay=0.05,
                                  initial_accumulator_value=0.2),
        ("Adagrad", dict(lr=0.1, eps=1e-6, weight_decay=0.05, initial_accumulator_value=0.2))),
}

N_STEPS = 5


def trajectory(seed=0, size=7, n_steps=N_STEPS):
    """A start vector and gradients that change (in size and sign) from step to step."""
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(size)
    grads = [rng.standard_normal(size) * (0.2 + i) for i in range(n_steps)]
    grads[1][0] = 0.0   # a zero gradient in the middle of the run
    return p0, grads


@pytest.mark.parametrize("name", list(CONFIGS))
def test_steps_follow_the_documented_pseudo_code(name):
    make, reference, _ = CONFIGS[name]
    p0, grads = trajectory()
    p = p0.copy()
    opt = make()
    for g in grads:
        opt.step(p, g.copy())
    expected = reference(p0.copy(), grads)
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)
    assert opt.iterations == N_STEPS
    # and the optimizer did move the parameters
    assert np.max(np.abs(p - p0)) > 1e-3


@pytest.mark.parametrize("name", list(CONFIGS))
def test_steps_match_torch(name):
    torch = pytest.importorskip("torch")
    make, _, (torch_name, kwargs) = CONFIGS[name]
    p0, grads = trajectory(seed=1)
    p = p0.copy()
    opt = make()
    pt = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    topt = getattr(torch.optim, torch_name)([pt], **kwargs)
    for g in grads:
        opt.step(p, g.copy())
        pt.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        np.testing.assert_allclose(p, pt.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_grads_are_not_modified():
    for name, (make, _, _) in CONFIGS.items():
        p0, grads = trajectory(seed=2)
        p = p0.copy()
        opt = make()
        for g in grads:
            g_before = g.copy()
            opt.step(p, g)
            np.testing.assert_array_equal(g, g_before, err_msg=name)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_overwrite_grads_gives_the_same_steps(name):
    """overwrite_grads=True (what a model passes) may use the gradients as scratch
    space, in blocks across several cache-sized slices, and changes no update."""
    make, _, _ = CONFIGS[name]
    p0, grads = trajectory(seed=4, size=2000)
    plain, scratch = make(), make()
    plain.BLOCK_BYTES = scratch.BLOCK_BYTES = 4096          # 4 blocks of 512 float64
    p, q = p0.copy(), p0.copy()
    for g in grads:
        plain.step(p, g.copy())
        g_scratch = g.copy()
        scratch.step(q, g_scratch, overwrite_grads=True)
        np.testing.assert_array_equal(q, p)
        # Adam (and AdamW) use the gradients as scratch; the others leave them alone
        assert np.array_equal(g_scratch, g) != type(scratch).GRADS_AS_SCRATCH
    assert scratch.GRADS_AS_SCRATCH == isinstance(scratch, snn.Adam)


def test_float32_parameters_are_updated_in_place():
    p0, grads = trajectory(seed=3)
    for name, (make, reference, _) in CONFIGS.items():
        p = p0.astype(np.float32)
        alias = p
        opt = make()
        for g in grads:
            opt.step(p, g.astype(np.float32))
        assert p is alias and p.dtype == np.float32
        np.testing.assert_allclose(p, reference(p0.copy(), grads), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


# ---------------------------------------------------------------------- state
@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_round_trip_continues_identically(name):
    make, _, _ = CONFIGS[name]
    p0, grads = trajectory(seed=4, n_steps=6)
    original = make()
    p = p0.copy()
    for g in grads[:3]:
        original.step(p, g)
    saved = original.state_dict()
    assert saved["iterations"] == 3

    restored = make()
    restored.load_state_dict(saved)
    # changing the saved dict afterwards must not reach into either optimizer
    for key, value in saved.items():
        if isinstance(value, np.ndarray):
            value[...] = 1e6
    q = p.copy()
    for g in grads[3:]:
        original.step(p, g)
        restored.step(q, g)
    np.testing.assert_array_equal(p, q)
    assert restored.iterations == original.iterations == 6


def test_state_dict_holds_the_moments():
    opt = snn.Adam(lr=0.1)
    steps(opt, [G1])
    state = opt.state_dict()
    # m = 0.1 g, v = 0.001 g^2 after one step from zero: the moments themselves, as
    # torch.optim.Adam's exp_avg and exp_avg_sq (format 1 of the model files kept
    # m / (1 - beta1) and v / (1 - beta2) instead)
    assert set(state) == {"iterations", "m", "v"}
    assert state["m"] == approx([0.05, -0.1, 0.0])
    assert state["v"] == approx([0.00025, 0.001, 0.0])
    assert set(snn.SGD(lr=0.1).state_dict()) == {"iterations"}


@pytest.mark.parametrize("make", [
    lambda: snn.SGD(lr=0.1, momentum=0.9), lambda: snn.Adam(), lambda: snn.AdamW(),
    lambda: snn.RMSProp(), lambda: snn.RMSProp(momentum=0.5), lambda: snn.AdaGrad(),
], ids=["sgd-momentum", "adam", "adamw", "rmsprop", "rmsprop-momentum", "adagrad"])
def test_reuse_for_a_vector_of_another_size_raises(make):
    opt = make()
    opt.step(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="params"):
        opt.step(np.ones(4), np.ones(4))
    # a state loaded for 3 parameters is also refused for 5
    other = make()
    other.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="params"):
        other.step(np.ones(5), np.ones(5))


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize("make, argument", [
    (lambda: snn.SGD(lr=0), "lr"),
    (lambda: snn.SGD(lr=-1), "lr"),
    (lambda: snn.SGD(lr=float("nan")), "lr"),
    (lambda: snn.SGD(lr=float("inf")), "lr"),
    (lambda: snn.Adam(lr=0), "lr"),
    (lambda: snn.AdaGrad(lr=-0.5), "lr"),
    (lambda: snn.SGD(lr="0.1"), "lr"),
    (lambda: snn.SGD(lr=True), "lr"),
    (lambda: snn.Adam(beta1=1), "beta1"),
    (lambda: snn.Adam(beta1=-0.1), "beta1"),
    (lambda: snn.AdamW(beta2=1.0), "beta2"),
    (lambda: snn.SGD(momentum=-0.1), "momentum"),
    (lambda: snn.SGD(momentum=1.0), "momentum"),
    (lambda: snn.RMSProp(momentum=-0.1), "momentum"),
    (lambda: snn.SGD(lr=0.1, nesterov=True), "nesterov"),
    (lambda: snn.Adam(eps=0), "eps"),
    (lambda: snn.RMSProp(eps=0), "eps"),
    (lambda: snn.AdaGrad(eps=0), "eps"),
    (lambda: snn.RMSProp(rho=1), "rho"),
    (lambda: snn.SGD(weight_decay=-0.01), "weight_decay"),
    (lambda: snn.AdamW(weight_decay=float("nan")), "weight_decay"),
    (lambda: snn.AdaGrad(initial_accumulator_value=-1), "initial_accumulator_value"),
])
def test_invalid_hyperparameters_raise_naming_the_argument(make, argument):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        make()


def test_valid_edge_hyperparameters_are_accepted():
    assert snn.Adam(beta1=0.0).beta1 == 0.0
    assert snn.SGD(lr=1e-12, momentum=0.0).momentum == 0.0
    assert snn.RMSProp(rho=0.0).rho == 0.0
    assert snn.AdaGrad(initial_accumulator_value=0.0).initial_accumulator_value == 0.0


# ------------------------------------------------------------ block-wise updates
@pytest.mark.parametrize("make", [
    lambda: snn.SGD(lr=0.1), lambda: snn.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda: snn.Adam(lr=0.01, weight_decay=0.1), lambda: snn.AdamW(lr=0.01),
    lambda: snn.RMSProp(lr=0.01, momentum=0.5, weight_decay=0.1),
    lambda: snn.AdaGrad(lr=0.1, weight_decay=0.1),
])
def test_updating_in_blocks_gives_the_same_result_as_one_block(make):
    rng = np.random.default_rng(0)
    start = rng.normal(size=1001)
    grads = [rng.normal(size=1001) for _ in range(4)]
    results = []
    for block_bytes in (10**9, 8 * 64, 8 * 7):     # one block; blocks of 64; of 7 (ragged end)
        optimizer = make()
        optimizer.BLOCK_BYTES = block_bytes
        params = start.copy()
        for g in grads:
            optimizer.step(params, g)
        assert len(optimizer._blocks) == -(-1001 // max(1, block_bytes // 8))
        results.append(params)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    assert not np.allclose(results[0], start)


def test_subnormal_state_values_are_flushed_to_zero():
    """Subnormal moments make x86 arithmetic many times slower; they are zeroed
    every FLUSH_EVERY steps, which moves no parameter measurably."""
    params = np.ones(3, dtype=np.float32)
    optimizer = snn.Adam(lr=1e-3)
    optimizer.FLUSH_EVERY = 5
    twin, twin_params = snn.Adam(lr=1e-3), params.copy()    # the same, never flushing
    twin.FLUSH_EVERY = 10 ** 9
    zero = np.zeros(3, dtype=np.float32)
    first = np.array([1.0, -1.0, 1e-38], dtype=np.float32)
    optimizer.step(params, first)
    twin.step(twin_params, first)
    for _ in range(3):
        optimizer.step(params, zero)
        twin.step(twin_params, zero)
    tiny = np.finfo(np.float32).tiny
    m = optimizer.state["m"]
    assert 0 < m[2] < tiny                    # 1e-38, decayed: subnormal
    assert abs(m[0]) > tiny and abs(m[1]) > tiny
    before, m_before = params.copy(), m.copy()
    optimizer.step(params, zero)              # step 5 flushes
    twin.step(twin_params, zero)
    assert m[2] == 0 and twin.state["m"][2] != 0
    np.testing.assert_allclose(m[:2], 0.9 * m_before[:2], rtol=1e-6)   # normal values untouched
    np.testing.assert_allclose(params, before, atol=2e-3)
    # flushing changed no parameter at all: float32 cannot see a 1e-38 moment's step
    for _ in range(5):
        optimizer.step(params, zero)
        twin.step(twin_params, zero)
    np.testing.assert_array_equal(params, twin_params)
