"""The learning core: inits, models, data, training, probes and the algorithms the chapters test
(LSUV, the CIFAR ResNets with Fixup, deep plain stacks)."""
