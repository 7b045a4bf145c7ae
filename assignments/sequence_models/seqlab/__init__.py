"""seqlab: sequence models built by hand.

Student modules (you write every function whose body raises ``NotImplementedError``):
    rnn_layers, lstm_layers, attention_layers, captioning   (numpy, notebooks 01-03)
    transformer                                              (PyTorch, notebook 04)
Given modules (read them, do not change them):
    gradient_check, solver, data, visualize, metrics, dates, analysis, torch_utils
"""
