#include "tools/tlbsim/nnls.h"

#include <limits>
#include <vector>

namespace tlbsim {

NnlsResult nnls(const Eigen::MatrixXd& A, const Eigen::VectorXd& b, int max_iterations,
                double tolerance) {
  const Eigen::Index n = A.cols();
  NnlsResult r;
  r.x = Eigen::VectorXd::Zero(n);
  if (n == 0) return r;
  if (max_iterations <= 0) max_iterations = static_cast<int>(3 * n + 10);
  std::vector<bool> passive(static_cast<size_t>(n), false);
  Eigen::VectorXd w = A.transpose() * (b - A * r.x);
  // Least squares on the passive columns only.
  auto solve_passive = [&](Eigen::VectorXd& z) {
    std::vector<Eigen::Index> cols;
    for (Eigen::Index j = 0; j < n; ++j)
      if (passive[static_cast<size_t>(j)]) cols.push_back(j);
    z = Eigen::VectorXd::Zero(n);
    if (cols.empty()) return;
    Eigen::MatrixXd Ap(A.rows(), static_cast<Eigen::Index>(cols.size()));
    for (size_t k = 0; k < cols.size(); ++k) Ap.col(static_cast<Eigen::Index>(k)) = A.col(cols[k]);
    const Eigen::VectorXd zp = Ap.colPivHouseholderQr().solve(b);
    for (size_t k = 0; k < cols.size(); ++k) z[cols[k]] = zp[static_cast<Eigen::Index>(k)];
  };
  for (;;) {
    // Outer loop: move the most promising active variable into the passive set.
    Eigen::Index best = -1;
    double best_w = tolerance;
    for (Eigen::Index j = 0; j < n; ++j)
      if (!passive[static_cast<size_t>(j)] && w[j] > best_w) {
        best_w = w[j];
        best = j;
      }
    if (best < 0) break;
    if (++r.iterations > max_iterations) {
      r.converged = false;
      break;
    }
    passive[static_cast<size_t>(best)] = true;
    Eigen::VectorXd z;
    for (;;) {
      // Inner loop: step towards the unconstrained passive solution, keeping x >= 0.
      solve_passive(z);
      bool feasible = true;
      for (Eigen::Index j = 0; j < n; ++j)
        if (passive[static_cast<size_t>(j)] && z[j] <= 0) feasible = false;
      if (feasible) break;
      double alpha = std::numeric_limits<double>::infinity();
      for (Eigen::Index j = 0; j < n; ++j)
        if (passive[static_cast<size_t>(j)] && z[j] <= 0)
          alpha = std::min(alpha, r.x[j] / (r.x[j] - z[j]));
      r.x += alpha * (z - r.x);
      for (Eigen::Index j = 0; j < n; ++j)
        if (passive[static_cast<size_t>(j)] && r.x[j] <= tolerance) {
          passive[static_cast<size_t>(j)] = false;
          r.x[j] = 0;
        }
    }
    r.x = z;
    w = A.transpose() * (b - A * r.x);
  }
  return r;
}

}  // namespace tlbsim
