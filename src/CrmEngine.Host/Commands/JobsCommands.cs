using System.CommandLine;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using CrmEngine.Scheduling.Admin;
using CrmEngine.Scheduling.Calendars;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Commands;

/// <summary>
/// <c>crm jobs list|show|run|pause|resume|cancel|retry</c> and <c>crm calendars show</c>. They ask the running
/// service over the control channel; when it is not running they open the database (and the configuration) directly.
/// </summary>
internal static class JobsCommands
{
    public static Command Jobs()
    {
        var jobs = new Command("jobs", "Scheduled jobs: list, show, run now, pause, resume, cancel, retry a parked job.");

        var state = new Option<string?>("--state") { Description = "due, scheduled, running, paused, parked, completed or cancelled." };
        var plugin = new Option<string?>("--plugin") { Description = "Owner: a plugin id, or core." };
        var kind = new Option<string?>("--kind") { Description = "Job kind." };
        var limit = new Option<int?>("--limit") { Description = "At most this many jobs (default 100)." };
        var list = new Command("list", "Jobs with their state, next due time (UTC), last outcome and schedule.") { state, plugin, kind, limit };
        list.TreatUnmatchedTokensAsErrors = false;
        list.SetAction((parse, ct) => RunAsync(parse, ct, async (remote, local) =>
        {
            var query = $"jobs?state={Uri.EscapeDataString(parse.GetValue(state) ?? "")}&plugin={Uri.EscapeDataString(parse.GetValue(plugin) ?? "")}" +
                        $"&kind={Uri.EscapeDataString(parse.GetValue(kind) ?? "")}" + (parse.GetValue(limit) is { } l ? $"&limit={l}" : "");
            var rows = remote is not null
                ? await remote.GetAsync<List<JobInfo>>(query, ct)
                : (IReadOnlyList<JobInfo>)Body(await local!.ListJobsAsync(Empty(parse.GetValue(state)), Empty(parse.GetValue(plugin)),
                    Empty(parse.GetValue(kind)), parse.GetValue(limit), ct));
            Console.Write(SchedulingText.Jobs(rows));
        }));
        jobs.Subcommands.Add(list);

        var showId = new Argument<string>("id") { Description = "The job id (see crm jobs list)." };
        var show = new Command("show", "One job with its recent runs (start, end, outcome, error).") { showId };
        show.TreatUnmatchedTokensAsErrors = false;
        show.SetAction((parse, ct) => RunAsync(parse, ct, async (remote, local) =>
        {
            var id = parse.GetValue(showId)!;
            var details = remote is not null
                ? await remote.GetAsync<JobDetails>($"jobs/{Uri.EscapeDataString(id)}", ct)
                : (JobDetails)Body(await local!.ShowJobAsync(id, 20, ct));
            Console.Write(SchedulingText.Job(details));
        }));
        jobs.Subcommands.Add(show);

        foreach (var (name, description) in new[]
                 {
                     ("run", "Runs the job now (a recurring job keeps its regular occurrences)."),
                     ("pause", "Pauses the job; a run in progress finishes first."),
                     ("resume", "Resumes a paused job (a recurring one continues with its next occurrence)."),
                     ("cancel", "Cancels the job; a run in progress finishes first."),
                     ("retry", "Runs a parked job again from attempt 1 (same occurrence and idempotency key)."),
                 })
        {
            var id = new Argument<string>("id") { Description = "The job id (see crm jobs list)." };
            var command = new Command(name, description) { id };
            command.TreatUnmatchedTokensAsErrors = false;
            var action = name;
            command.SetAction((parse, ct) => RunAsync(parse, ct, async (remote, local) =>
            {
                var jobId = parse.GetValue(id)!;
                var details = remote is not null
                    ? await remote.PostAsync<object, JobDetails>($"jobs/{Uri.EscapeDataString(jobId)}/{action}", new { }, ct)
                    : (JobDetails)Body(await local!.ActAsync(jobId, action, ct));
                Console.WriteLine($"{action}: job {details.Job.Id} is now {details.Job.State}");
                Console.Write(SchedulingText.Job(details));
            }));
            jobs.Subcommands.Add(command);
        }

        return jobs;
    }

    public static Command Calendars()
    {
        var calendars = new Command("calendars", "Business calendars (section Calendars).");
        var name = new Argument<string>("name") { Description = "Calendar name, for example default." };
        var from = new Option<string?>("--from") { Description = "First day, yyyy-MM-dd in the calendar's time zone (default today)." };
        var days = new Option<int?>("--days") { Description = "Number of days (default 14, at most 366)." };
        var show = new Command("show", "Prints the open periods day by day, so a wrong holiday file is seen before it breaks an SLA.") { name, from, days };
        show.TreatUnmatchedTokensAsErrors = false;
        show.SetAction((parse, ct) => RunAsync(parse, ct, async (remote, local) =>
        {
            var calendar = parse.GetValue(name)!;
            var periods = remote is not null
                ? await remote.GetAsync<CalendarPeriods>($"calendars/{Uri.EscapeDataString(calendar)}?from={Uri.EscapeDataString(parse.GetValue(from) ?? "")}" +
                                                         (parse.GetValue(days) is { } d ? $"&days={d}" : ""), ct)
                : (CalendarPeriods)Body(local!.ShowCalendar(calendar, Empty(parse.GetValue(from)), parse.GetValue(days)));
            Console.Write(SchedulingText.Calendar(periods));
        }, needsDatabase: false));
        calendars.Subcommands.Add(show);
        return calendars;
    }

    private static string? Empty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static object Body(ControlAnswer answer) =>
        answer.Error is null ? answer.Body! : throw new CommandRefusedException(answer.Error, answer.Status == 400 ? ExitCodes.Usage : ExitCodes.Refused);

    /// <summary>Runs <paramref name="work"/> against the running service, or in-process on the stopped database.</summary>
    private static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ControlClient?, SchedulingControl?, Task> work, bool needsDatabase = true)
    {
        var crm = CrmCommandLine.LoadConfiguration(parse);
        var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
        if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
        {
            using var client = new ControlClient(endpoint, TimeSpan.FromSeconds(30));
            await work(client, null);
            return ExitCodes.Ok;
        }

        IBusinessCalendars calendars;
        try
        {
            calendars = new BusinessCalendars(CalendarFactory.Load(crm.Root, crm.ContentRoot, DateTimeOffset.UtcNow.Year));
        }
        catch (CalendarConfigurationException ex)
        {
            throw new CommandRefusedException(ex.Message, ExitCodes.Usage);
        }

        if (!needsDatabase)
        {
            await work(null, SchedulingControl.ForCalendars(calendars, TimeProvider.System));
            return ExitCodes.Ok;
        }

        var store = AdminCommands.StoreOptionsOf(crm);
        var live = CrmDatabase.ResolveFilePath(store, crm.ContentRoot);
        if (!File.Exists(live))
        {
            throw new CommandRefusedException($"no database at {live}: no jobs yet (check Store:DataDirectory and --content-root).");
        }

        if (InstanceLock.IsHeld(store.DataDirectory, out var holder) || CrmDatabase.IsInUse(live))
        {
            throw new CommandRefusedException($"the database {live} is in use by another process{holder} but no service answers on {endpoint}; " +
                                              "enable the control channel (Host:ControlEnabled=true) or stop that process.");
        }

        var options = new SchedulerOptions();
        crm.Root.GetSection(SchedulerOptions.Section).Bind(options);
        using var db = new CrmDatabase(store);
        using var scheduler = new JobScheduler(db, new JobHandlerRegistry(), options);
        await work(null, new SchedulingControl(new JobAdministration(scheduler), calendars, TimeProvider.System));
        return ExitCodes.Ok;
    }
}
