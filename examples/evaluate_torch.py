"""How robust is a PyTorch model? Evaluate it against FGSM and PGD with advlib.

Run: python examples/evaluate_torch.py   (writes robustness_torch.json and .png here)
"""

import torch
from torch.utils.data import DataLoader, TensorDataset

import advlib

# Any torch.nn.Module that returns logits; here the zoo's adversarially trained digits CNN.
net = advlib.zoo.digits_cnn_network("torch", robust=True).eval()
model = advlib.PyTorchModel(net, bounds=(0, 1))

# Data as a DataLoader (a pair of arrays or any iterable of (inputs, labels) batches works too).
x, y = advlib.zoo.digits("test")
loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=128)

report = advlib.evaluate(
    model,
    loader,
    attacks=["FGSM", advlib.attacks.LinfPGD(steps=20, rel_stepsize=0.1)],
    epsilons=[0.0, 0.05, 0.1, 0.2],
)
print(report)  # clean and robust accuracy with 95% intervals, time and model calls per attack
report.to_json("robustness_torch.json")
report.plot("robustness_torch.png")  # needs matplotlib
