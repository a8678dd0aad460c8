"""Closed-form references shared by the tests, derived independently of fe2x."""

import numpy as np


def laminate_stiffness(fractions, stiffnesses, normal_rows) -> np.ndarray:
    """Closed-form laminate stiffness (Mandel), from traction and in-plane strain continuity.

    With the strain split into components continuous across the layers (in-plane, T) and the
    normal ones (N), each layer has σ_N = C_NN ε_N + C_NT E_T with σ_N the same in every layer
    and ⟨ε_N⟩ = E_N. Hence σ_N = ⟨C_NN⁻¹⟩⁻¹ (E_N + ⟨C_NN⁻¹ C_NT⟩ E_T) and σ_T = ⟨C_TN ε_N⟩ +
    ⟨C_TT⟩ E_T.
    """
    n = stiffnesses[0].shape[0]
    N = list(normal_rows)
    T = [i for i in range(n) if i not in N]
    C_eff = np.zeros((n, n))
    for k in range(n):
        E = np.eye(n)[k]
        inv_NN = sum(
            f * np.linalg.inv(C[np.ix_(N, N)]) for f, C in zip(fractions, stiffnesses, strict=True)
        )
        coupling = sum(
            f * np.linalg.solve(C[np.ix_(N, N)], C[np.ix_(N, T)])
            for f, C in zip(fractions, stiffnesses, strict=True)
        )
        sigma_N = np.linalg.solve(inv_NN, E[N] + coupling @ E[T])
        sigma_T = np.zeros(len(T))
        for f, C in zip(fractions, stiffnesses, strict=True):
            eps_N = np.linalg.solve(C[np.ix_(N, N)], sigma_N - C[np.ix_(N, T)] @ E[T])
            sigma_T += f * (C[np.ix_(T, N)] @ eps_N + C[np.ix_(T, T)] @ E[T])
        C_eff[N, k] = sigma_N
        C_eff[T, k] = sigma_T
    return C_eff
