fn main() {
    // Parse workers are this binary re-executed (`pidone __parse-worker`); never returns then.
    pidone::sandbox::run_if_worker();
}
