"""The white box, set apart on purpose: MeZO, IPL's gradient-trained original and the backprop reference open
the model (weights, autograd), which no black-box method may do."""
