using CrmEngine.Abstractions.Scheduling;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>
/// What IT staff do with jobs (<c>crm jobs ...</c>): any owner's job, with errors that say what is wrong.
/// Every method throws <see cref="KeyNotFoundException"/> for an unknown id and
/// <see cref="InvalidOperationException"/> when the job's state does not allow the change.
/// </summary>
public sealed class JobAdministration(JobScheduler scheduler)
{
    public Task<IReadOnlyList<JobInfo>> ListAsync(JobQuery query, CancellationToken cancellationToken = default) =>
        scheduler.ListAsync(query, cancellationToken);

    /// <summary>The job and its most recent runs (newest first).</summary>
    public async Task<(JobInfo Job, IReadOnlyList<JobRunInfo> Runs)> ShowAsync(string jobId, int runs = 20, CancellationToken cancellationToken = default)
    {
        var job = await scheduler.GetAsync(jobId, cancellationToken).ConfigureAwait(false) ?? throw Unknown(jobId);
        return (job, await scheduler.RunsAsync(jobId, runs, cancellationToken).ConfigureAwait(false));
    }

    public Task RunNowAsync(string jobId, CancellationToken cancellationToken = default) => Do(jobId, JobScheduler.Change.RunNow, cancellationToken);

    public Task PauseAsync(string jobId, CancellationToken cancellationToken = default) => Do(jobId, JobScheduler.Change.Pause, cancellationToken);

    public Task ResumeAsync(string jobId, CancellationToken cancellationToken = default) => Do(jobId, JobScheduler.Change.Resume, cancellationToken);

    public Task CancelAsync(string jobId, CancellationToken cancellationToken = default) => Do(jobId, JobScheduler.Change.Cancel, cancellationToken);

    /// <summary>Runs a parked job again from attempt 1 (same occurrence, same idempotency key).</summary>
    public Task RetryAsync(string jobId, CancellationToken cancellationToken = default) => Do(jobId, JobScheduler.Change.Retry, cancellationToken);

    public Task<SchedulerHealth> HealthAsync(CancellationToken cancellationToken = default) => scheduler.HealthAsync(cancellationToken);

    private async Task Do(string jobId, JobScheduler.Change change, CancellationToken cancellationToken)
    {
        var problem = await scheduler.ChangeAsync(jobId, null, change, cancellationToken).ConfigureAwait(false);
        if (problem is null)
        {
            throw Unknown(jobId);
        }

        if (problem.Length > 0)
        {
            throw new InvalidOperationException($"Cannot {change.ToString().ToLowerInvariant()}: {problem}");
        }
    }

    private static KeyNotFoundException Unknown(string jobId) =>
        new($"No job has the id '{jobId}'. `crm jobs list` shows the ids.");
}
