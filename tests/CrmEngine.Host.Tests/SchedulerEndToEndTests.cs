using System.Globalization;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// The scheduler on real time in the real host process: the fixture plugin <c>fixture.ticker</c> declares a
/// job kind and schedules a recurring one-second job at install; its handler appends one line per run
/// (idempotency key, attempt, pid). The job is seen through <c>crm jobs</c>, paused and resumed over the
/// control channel, and it continues after a clean restart and after a SIGKILL.
/// </summary>
public sealed class SchedulerEndToEndTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task A_plugin_job_runs_pauses_resumes_and_continues_across_restart_and_kill()
    {
        using var root = new TestRoot(withStreamFixture: true);
        var runsFile = root.File_("runs.txt");
        Patch(root, runsFile);

        string jobId;
        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            Assert.Contains(crm.Lines, l => l.Contains("Plugin fixture.ticker 1.0.0 Active", StringComparison.Ordinal));
            await WaitForRunsAsync(runsFile, 3, crm);

            // crm jobs list: the plugin's job, with its owner, kind and schedule.
            var (code, list) = await CrmProcess.RunAsync(root.Path, output, "jobs", "list", "--plugin", "fixture.ticker");
            Assert.Equal(0, code);
            var row = list.Split('\n').Single(l => l.Contains("fixture.tick ", StringComparison.Ordinal));
            Assert.Contains("every 00:00:01", row, StringComparison.Ordinal);
            jobId = row.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];

            // crm jobs show: recent runs succeeded.
            (code, var show) = await CrmProcess.RunAsync(root.Path, output, "jobs", "show", jobId);
            Assert.Equal(0, code);
            Assert.Contains("recent runs:", show, StringComparison.Ordinal);
            Assert.Contains("Succeeded", show, StringComparison.Ordinal);

            // Health includes the scheduler.
            (code, var status) = await CrmProcess.RunAsync(root.Path, output, "status");
            Assert.Equal(0, code);
            Assert.Contains("scheduler on ", status, StringComparison.Ordinal);

            // Pause: a run in progress finishes first (the job shows Running until then), then no further runs.
            (code, var paused) = await CrmProcess.RunAsync(root.Path, output, "jobs", "pause", jobId);
            Assert.Equal(0, code);
            Assert.Matches($"job {jobId} is now (Paused|Running)", paused);
            await WaitForStateAsync(root, jobId, "Paused");
            var atPause = ReadRuns(runsFile).Count;
            await Task.Delay(TimeSpan.FromSeconds(4));
            Assert.Equal(atPause, ReadRuns(runsFile).Count);
            (_, var pausedList) = await CrmProcess.RunAsync(root.Path, output, "jobs", "list", "--state", "paused");
            Assert.Contains(jobId, pausedList, StringComparison.Ordinal);

            // Resume: runs again.
            var beforeResume = ReadRuns(runsFile).Count;
            (code, var resumed) = await CrmProcess.RunAsync(root.Path, output, "jobs", "resume", jobId);
            Assert.Equal(0, code);
            Assert.Contains($"job {jobId} is now Scheduled", resumed, StringComparison.Ordinal);
            await WaitForRunsAsync(runsFile, beforeResume + 2, crm);

            // Clear errors for a bad --state, an unknown id and a change the job's state does not allow.
            (code, var badState) = await CrmProcess.RunAsync(root.Path, output, "jobs", "list", "--state", "late");
            Assert.Equal(1, code);
            Assert.Contains("--state: 'late' is not a job state", badState, StringComparison.Ordinal);
            (code, var unknown) = await CrmProcess.RunAsync(root.Path, output, "jobs", "show", "no-such-job");
            Assert.Equal(1, code);
            Assert.Contains("No job has the id 'no-such-job'", unknown, StringComparison.Ordinal);
            (code, var retry) = await CrmProcess.RunAsync(root.Path, output, "jobs", "retry", jobId);
            Assert.Equal(1, code);
            Assert.Contains("Cannot retry", retry, StringComparison.Ordinal);

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(TimeSpan.FromMinutes(1)));
        }

        // Stopped: the jobs verbs open the database directly.
        var afterStop = ReadRuns(runsFile).Count;
        var (stoppedCode, stoppedShow) = await CrmProcess.RunAsync(root.Path, output, "jobs", "show", jobId);
        Assert.Equal(0, stoppedCode);
        Assert.Matches(@"state\s+Scheduled", stoppedShow);

        // Restart: the same job (installed once, unique key) continues in the new process.
        int secondPid;
        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            secondPid = crm.Id;
            await WaitForRunsAsync(runsFile, afterStop + 3, crm);
            crm.Signal(CrmProcess.SIGKILL);
            await crm.WaitForExitAsync(TimeSpan.FromMinutes(1));
        }

        var afterKill = ReadRuns(runsFile).Count;
        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            await WaitForRunsAsync(runsFile, afterKill + 3, crm);
            var (code, list) = await CrmProcess.RunAsync(root.Path, output, "jobs", "list");
            Assert.Equal(0, code);
            Assert.Single(list.Split('\n'), l => l.Contains("fixture.tick ", StringComparison.Ordinal));
            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(TimeSpan.FromMinutes(1)));
        }

        var runs = ReadRuns(runsFile);
        Assert.All(runs, r => Assert.StartsWith(jobId + ":", r.Key, StringComparison.Ordinal));
        Assert.Contains(runs, r => r.Pid == secondPid);
        Assert.True(runs.Select(r => r.Pid).Distinct().Count() >= 3, "runs in all three processes");

        // No occurrence ran twice, except one a kill interrupted: that re-run is a later attempt.
        foreach (var group in runs.GroupBy(r => r.Key).Where(g => g.Count() > 1))
        {
            var repeats = group.ToList();
            Assert.True(repeats.Skip(1).All(r => r.Attempt > 1 && r.Pid != repeats[0].Pid),
                $"occurrence {group.Key} ran twice without an interrupted run: {string.Join(" | ", repeats)}");
        }
    }

    [Fact]
    public async Task Calendars_show_prints_open_periods_and_bad_calendar_or_job_options_are_named()
    {
        using var root = new TestRoot();

        // The shipped default calendar: Monday-Friday 09:00-17:00 UTC, Christmas closed.
        var (code, shown) = await CrmProcess.RunAsync(root.Path, output, "calendars", "show", "default", "--from", "2026-12-23", "--days", "4");
        Assert.Equal(0, code);
        Assert.Contains("2026-12-23 Wed  09:00-17:00", shown, StringComparison.Ordinal);
        Assert.Contains("2026-12-25 Fri  closed", shown, StringComparison.Ordinal);
        Assert.Contains("2026-12-26 Sat  closed", shown, StringComparison.Ordinal);
        Assert.Contains("open 16 h in 4 days", shown, StringComparison.Ordinal);

        (code, shown) = await CrmProcess.RunAsync(root.Path, output, "calendars", "show", "nope");
        Assert.Equal(1, code);
        Assert.Contains("No calendar is named 'nope'", shown, StringComparison.Ordinal);

        (code, shown) = await CrmProcess.RunAsync(root.Path, output, "calendars", "show", "default", "--from", "24.12.2026");
        Assert.Equal(2, code);
        Assert.Contains("--from: '24.12.2026' is not a date", shown, StringComparison.Ordinal);

        // A bad calendar value and a bad scheduler value: config check names the keys; the engine does not start.
        string[] bad = ["--Calendars:default:WorkingHours:Monday:0=9-17", "--Scheduler:MaxConcurrentRuns=0"];
        (code, shown) = await CrmProcess.RunAsync(root.Path, output, ["config", "check", .. bad]);
        Assert.Equal(2, code);
        Assert.Contains("Calendars:default:WorkingHours:Monday:0", shown, StringComparison.Ordinal);
        Assert.Contains("Scheduler:MaxConcurrentRuns", shown, StringComparison.Ordinal);
        (code, shown) = await CrmProcess.RunAsync(root.Path, output, ["run", .. bad]);
        Assert.Equal(2, code);
        Assert.Contains("configuration error: Calendars:default:WorkingHours:Monday:0", shown, StringComparison.Ordinal);

        // Jobs before the engine ever ran: no database, said so.
        (code, shown) = await CrmProcess.RunAsync(root.Path, output, "jobs", "list");
        Assert.Equal(1, code);
        Assert.Contains("no database at", shown, StringComparison.Ordinal);
        (code, shown) = await CrmProcess.RunAsync(root.Path, output, "status");
        Assert.Equal(1, code);
        Assert.Contains("not running", shown, StringComparison.Ordinal);
    }

    private static void Patch(TestRoot root, string runsFile)
    {
        var file = Path.Combine(root.Path, "appsettings.json");
        var settings = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        settings["Plugins"]!["fixture.ticker"] = new JsonObject { ["RunsFile"] = runsFile, ["IntervalMilliseconds"] = 1000 };
        settings["Scheduler"]!["PollInterval"] = "00:00:00.250";
        File.WriteAllText(file, settings.ToJsonString());
    }

    private async Task WaitForStateAsync(TestRoot root, string jobId, string state)
    {
        var until = DateTime.UtcNow + Bound;
        while (true)
        {
            var (code, show) = await CrmProcess.RunAsync(root.Path, output, "jobs", "show", jobId);
            Assert.Equal(0, code);
            if (System.Text.RegularExpressions.Regex.IsMatch(show, $@"state\s+{state}\b"))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < until, $"job {jobId} did not become {state}:\n{show}");
            await Task.Delay(200);
        }
    }

    private static async Task WaitForRunsAsync(string runsFile, int count, CrmProcess crm)
    {
        var until = DateTime.UtcNow + Bound;
        while (ReadRuns(runsFile).Count < count)
        {
            Assert.True(DateTime.UtcNow < until, $"expected {count} runs, saw {ReadRuns(runsFile).Count}:\n{crm.Output}");
            await Task.Delay(100);
        }
    }

    private sealed record Run(string Key, int Attempt, int Pid);

    private static List<Run> ReadRuns(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        string text;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        using (var reader = new StreamReader(stream))
        {
            text = reader.ReadToEnd();
        }

        var lines = text.Split('\n');
        return lines.Take(lines.Length - 1).Where(l => l.Length > 0).Select(l =>
        {
            var parts = l.Split(' ');
            return new Run(parts[0], int.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture));
        }).ToList();
    }
}
