// Non-negative least squares: minimise ||A x - b||2 subject to x >= 0, by the
// active-set algorithm of Lawson and Hanson ("Solving Least Squares Problems",
// 1974, ch. 23), with Eigen's column-pivoting QR for the unconstrained subproblems.
// Used by `tlbsim calibrate` on a few dozen parameters.
#pragma once

#include <Eigen/Dense>

namespace tlbsim {

/// The solution, and the number of outer iterations it took (0: A had no columns).
struct NnlsResult {
  Eigen::VectorXd x;
  int iterations = 0;
  bool converged = true;
};

NnlsResult nnls(const Eigen::MatrixXd& A, const Eigen::VectorXd& b, int max_iterations = 0,
                double tolerance = 1e-10);

}  // namespace tlbsim
