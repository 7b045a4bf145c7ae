"""seqlab: sequence models built by hand.

Student modules (you write the code marked TODO):
    rnn_layers, lstm_layers, attention_layers, captioning   (numpy, notebooks 01-03)
    transformer                                              (PyTorch, notebook 04)
Given modules (read them, do not change them):
    gradient_check, solver, data, visualize, metrics, dates
"""
