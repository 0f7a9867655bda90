"""Independent references: the keras.io way to get activations and gradients (a flat
gradient model on a linear-head network), and each method's formula from its paper."""

import keras
import numpy as np
import tensorflow as tf


def activations_and_gradients(model, x, layer, class_index):
    gradient_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        activations, logits = gradient_model(x, training=False)
        score = logits[:, class_index]
    gradients = tape.gradient(score, activations)
    return activations[0].numpy().astype(np.float64), gradients[0].numpy().astype(np.float64)


def relu(x):
    return np.maximum(x, 0)


def gradcam(A, G):
    # Selvaraju et al. eq. 1-2: alpha_k = 1/Z sum_ij dy/dA_ij^k; L = ReLU(sum_k alpha_k A^k)
    alpha = G.sum(axis=(0, 1)) / (G.shape[0] * G.shape[1])
    return relu(np.tensordot(A, alpha, axes=([2], [0])))


def gradcam_plus_plus(A, G, score):
    # Chattopadhyay et al. eq. 19 with Y = exp(S): first derivative exp(S) dS/dA, second and
    # third exp(S) (dS/dA)^2 and ^3; w_k = sum_ij alpha_ij ReLU(dY/dA_ij) (no extra normalisation).
    first = np.exp(score) * G
    second = np.exp(score) * G**2
    third = np.exp(score) * G**3
    denominator = 2 * second + A.sum(axis=(0, 1), keepdims=True) * third
    alpha = np.divide(second, denominator, out=np.zeros_like(second), where=denominator != 0)
    w = (alpha * relu(first)).sum(axis=(0, 1))
    return relu(np.tensordot(A, w, axes=([2], [0])))


def hirescam(A, G):
    # Draelos & Carin: element-wise gradient x activation, summed over channels.
    return relu(np.einsum("ijk,ijk->ij", G, A))


def xgradcam(A, G):
    # Fu et al. eq. 9: alpha_k = sum_ij (A_ij^k / sum_ij A_ij^k) dy/dA_ij^k
    totals = A.sum(axis=(0, 1))
    alpha = np.array([(A[..., k] / (totals[k] + 1e-7) * G[..., k]).sum() for k in range(A.shape[-1])])
    return relu(np.tensordot(A, alpha, axes=([2], [0])))


def layercam(A, G):
    # Jiang et al. eq. 5-6: w_ij^k = ReLU(g_ij^k); M = ReLU(sum_k w^k * A^k)
    return relu((relu(G) * A).sum(axis=2))


def eigencam(A):
    # Muhammad & Yeasin: project A (positions x channels) on its first principal direction.
    # The direction's sign is arbitrary; the map is the one with a positive total.
    flat = A.reshape(-1, A.shape[-1])
    u, s, vt = np.linalg.svd(flat, full_matrices=False)
    projection = flat @ vt[0]
    if projection.sum() < 0:
        projection = -projection
    return relu(projection.reshape(A.shape[:2]))


def scorecam_weights(model, x, A, class_index, batch=64):
    # Wang et al.'s code: each channel upsampled (bilinear, half-pixel like torch's
    # align_corners=False), min-max scaled, masks the input; weight = softmax probability of
    # the class on that masked input; a constant channel is skipped (weight 0).
    h, w = x.shape[1:3]
    maps = tf.image.resize(np.moveaxis(A, -1, 0)[..., None].astype(np.float32), (h, w)).numpy()
    weights = np.zeros(A.shape[-1])
    for start in range(0, len(maps), batch):
        chunk = maps[start : start + batch]
        low = chunk.min(axis=(1, 2, 3), keepdims=True)
        high = chunk.max(axis=(1, 2, 3), keepdims=True)
        masks = (chunk - low) / np.where(high > low, high - low, 1)
        probabilities = tf.nn.softmax(model(x * masks, training=False)).numpy()[:, class_index]
        weights[start : start + batch] = np.where((high > low).ravel(), probabilities, 0)
    return weights


def correlation(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])
