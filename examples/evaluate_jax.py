"""How robust is a JAX model? Evaluate it against FGSM and PGD with advlib.

Run: python examples/evaluate_jax.py   (writes robustness_jax.json and .png here)
"""

import advlib

# Any pure function of a batch that returns logits, e.g. functools.partial(module.apply,
# params) for Flax; here the zoo's digits CNN, on channels-first images (N, 1, 8, 8).
forward = advlib.zoo.digits_cnn_network("jax", robust=True)
model = advlib.JAXModel(forward, bounds=(0, 1), data_format="channels_first")

# Data as NumPy arrays (pass batch_size=... to bound the memory each attack uses).
x, y = advlib.zoo.digits("test")

report = advlib.evaluate(
    model,
    (x, y),
    attacks=["FGSM", advlib.attacks.LinfPGD(steps=20, rel_stepsize=0.1)],
    epsilons=[0.0, 0.05, 0.1, 0.2],
)
print(report)
report.to_json("robustness_jax.json")
report.plot("robustness_jax.png")  # needs matplotlib
