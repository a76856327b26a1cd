"""How robust is a Keras model? Evaluate it against FGSM and PGD with advlib.

Run: python examples/evaluate_tensorflow.py   (writes robustness_tensorflow.json and .png here)
"""

import tensorflow as tf

import advlib

# Any Keras model (or callable on TF tensors) that returns logits; here the zoo's digits CNN,
# which takes channels-first images of shape (N, 1, 8, 8).
net = advlib.zoo.digits_cnn_network("tensorflow", robust=True)
model = advlib.TensorFlowModel(net, bounds=(0, 1))

# Data as a batched tf.data.Dataset.
x, y = advlib.zoo.digits("test")
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)

report = advlib.evaluate(
    model,
    dataset,
    attacks=["FGSM", advlib.attacks.LinfPGD(steps=20, rel_stepsize=0.1)],
    epsilons=[0.0, 0.05, 0.1, 0.2],
)
print(report)
report.to_json("robustness_tensorflow.json")
report.plot("robustness_tensorflow.png")  # needs matplotlib
