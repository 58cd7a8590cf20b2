/* The world of one process (a build without MPI, or a program not started by a launcher):
 * every collective is the identity, errors pass through unchanged, and a mesh built on it is
 * the in-process mesh. Several processes are tested through mpirun in cli_mpi.sh. */
#include "train_common.h"

Test(world, one_process_collectives_are_the_identity) {
    clpar_world *w;
    T_OK(clpar_world_init(&w));
    cr_expect_eq(clpar_world_size(w), 1);
    cr_expect_eq(clpar_world_rank(w), 0);
    cr_expect_eq(clpar_world_size(NULL), 1, "NULL is a world of one");
    cr_expect_neq(strlen(clpar_world_host(w, 0)), 0);
    cr_expect_str_eq(clpar_world_host(w, 5), "?");
    double v = 2.5, t = -1;
    T_OK(clpar_world_sum_double(w, &v));
    cr_expect_eq(v, 2.5);
    uint64_t u = 7;
    T_OK(clpar_world_min_u64(w, &u));
    cr_expect_eq(u, 7);
    int mine[3] = {1, 2, 3}, all[3] = {0};
    T_OK(clpar_world_allgather(w, mine, sizeof mine, all));
    cr_expect(!memcmp(mine, all, sizeof mine));
    T_OK(clpar_world_ping_pong(w, 1024, 3, &t));
    cr_expect_eq(t, 0.0, "no link in one process");
    cr_expect_eq(clpar_world_agree(w, CLPAR_OK, NULL), CLPAR_OK);
    cr_expect_eq(clpar_world_agree(w, CLPAR_EIO, "x"), CLPAR_EIO, "a failure passes through");
    clpar_world_free(w);
}

Test(world, mesh_of_one_process_holds_every_replica) {
    clpar_dataset ds = t_dataset(40, 12, 6, 0, 2);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "12,10,6");
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.batch = 20;
    c.dp = 2;
    c.pp = 2;
    c.accum = 1;
    c.devices = devices;
    c.ndevices = 4;
    clpar_world *w;
    T_OK(clpar_world_init(&w));
    c.world = w;
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
    int first = -1, count = -1;
    clpar_mesh_local_replicas(clpar_trainer_mesh(tr), &first, &count);
    cr_expect_eq(first, 0);
    cr_expect_eq(count, 2);
    clpar_step_info info;
    T_OK(clpar_trainer_step(tr, &info));
    clpar_mesh_stats s;
    clpar_trainer_get_stats(tr, &s);
    cr_expect_eq(s.bytes_sent, 0, "nothing leaves one process");
    clpar_trainer_free(tr);
    clpar_world_free(w);
    clpar_dataset_free(&ds);
}
