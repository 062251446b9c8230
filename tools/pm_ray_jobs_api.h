/*  pm_ray_jobs_api.h — a client of Ray's Jobs REST API (the dashboard's
    /api/jobs/), over libcurl: submit an entrypoint, read a job's status and
    logs, stop it.  Requests carry "Authorization: Bearer TOKEN" when Ray's
    token authentication is configured here (RAY_AUTH_TOKEN, else the file
    RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token when RAY_AUTH_MODE=token). */
#ifndef PM_RAY_JOBS_API_H_INCLUDED
#define PM_RAY_JOBS_API_H_INCLUDED
#include <stdbool.h>
#include <stddef.h>

typedef struct pm_ray_jobs_t pm_ray_jobs_t;

/* A job's state, as GET /api/jobs/ID reports it. */
typedef struct {
    char status[16];   /* PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED */
    bool has_exit_code;
    int exit_code;     /* driver_exit_code, when the entrypoint has exited */
    char message[512]; /* Ray's message (first line), may be empty */
} pm_ray_job_info_t;

/* A client of the Jobs API at url (http://HOST:PORT of the dashboard). NULL
   with err filled if the token file cannot be read or curl cannot start. */
pm_ray_jobs_t *pm_ray_jobs_new (const char *url, char *err, size_t err_size);
void pm_ray_jobs_destroy (pm_ray_jobs_t **self_p);

/* Each returns 0, or -1 with err saying why (no answer, HTTP status and
   Ray's reply, an unreadable reply).                                    */
/* POST /api/jobs/: runs entrypoint (a shell command line) with env_vars_json
   (a JSON object of strings, or NULL) as the job's runtime_env env_vars. */
int pm_ray_jobs_submit (pm_ray_jobs_t *self, const char *submission_id, const char *entrypoint,
                        const char *env_vars_json, char *err, size_t err_size);
int pm_ray_jobs_info (pm_ray_jobs_t *self, const char *submission_id, pm_ray_job_info_t *info,
                      char *err, size_t err_size);
/* POST /api/jobs/ID/stop; *stopped says whether Ray stopped a running job. */
int pm_ray_jobs_stop (pm_ray_jobs_t *self, const char *submission_id, bool *stopped, char *err,
                      size_t err_size);
/* GET /api/jobs/ID/logs: the whole log so far, malloc'd, into *logs. */
int pm_ray_jobs_logs (pm_ray_jobs_t *self, const char *submission_id, char **logs, char *err,
                      size_t err_size);
/* Whether a status is final (the job will not change any more). */
bool pm_ray_job_finished (const char *status);
#endif
