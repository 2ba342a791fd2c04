using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Customers;
using CrmEngine.DataExchange.Duplicates;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.Host.Commands;

/// <summary>
/// Customer data in and out: <c>crm import customers</c>, <c>crm export customers</c>, <c>crm duplicates scan</c>,
/// <c>crm customers merge|erase|export</c>. While the service runs, the work is done by the service (control channel
/// routes <c>/data/...</c>, see <see cref="MapControl"/>); when it is stopped, the command starts the engine itself in
/// this process (plugins, rules and duplicate checks included, so every write passes the same pipeline), holding the
/// instance lock so that no service starts meanwhile, and stops it at the end.
/// </summary>
internal static class DataCommands
{
    public sealed record DataAnswer(string Text, bool Ok);

    public sealed record ImportCall(string Path, string? Mapping, string? Delimiter, string? Encoding, bool DryRun, string User, string? As = null);

    /// <summary>One line of the import stream: progress while it runs, then the summary (or an error).</summary>
    public sealed record ImportLine(ImportProgress? Progress, string? Summary, bool Ok, string? Error);

    public sealed record PathCall(string Path, string? Mapping, string? As = null);

    public sealed record MergeCall(string Keep, string Remove, bool Force, string User, string? As = null);

    public sealed record EraseCall(string Id, string Reason, string User, string? As = null);

    public sealed record CustomerExportCall(string Id, string Path, string? As = null);

    /// <summary>
    /// <c>--as &lt;user&gt;</c>: the data verbs act as that user, with that user's record and field access. Without it they act
    /// as the machine operator: whoever can run <c>crm</c> on the server can read the database file anyway, so the CLI
    /// then has every right (the audit log records the operating-system user).
    /// </summary>
    private static Option<string?> AsOption() => new("--as")
    {
        Description = "Act as this CRM user (their record and field access applies; the audit log names them). Without it: the machine operator, with every right.",
    };

    // ------------------------------------------------------------------ verbs

    public static Command Import()
    {
        var import = new Command("import", "Import data into the store.");
        var file = new Argument<string>("file") { Description = "The CSV file (UTF-8 unless --encoding; header line required)." };
        var mapping = new Option<string?>("--mapping") { Description = "Mapping file (JSON: CSV column → customer field); default: header names are field names." };
        var delimiter = new Option<string?>("--delimiter") { Description = "Column delimiter (, ; or tab); detected from the file when left out." };
        var encoding = new Option<string?>("--encoding") { Description = "Text encoding, for example windows-1252 or iso-8859-1 (a byte-order mark wins). Default UTF-8." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Read, check and match every row and write the reject file, but store nothing." };
        var asUser = AsOption();
        var customers = new Command("customers", "Upsert customers from CSV (match by id, external id, then e-mail). Bad rows go to <file>.rejects.csv with line, column and reason.")
        {
            file, mapping, delimiter, encoding, dryRun, asUser,
        };
        customers.TreatUnmatchedTokensAsErrors = false;
        customers.SetAction(async (parse, ct) =>
        {
            var call = new ImportCall(Path.GetFullPath(parse.GetValue(file)!), Full(parse.GetValue(mapping)), parse.GetValue(delimiter),
                parse.GetValue(encoding), parse.GetValue(dryRun), parse.GetValue(asUser) ?? Environment.UserName, parse.GetValue(asUser));
            var display = new ProgressDisplay();
            return await RunAsync(parse, ct,
                async remote => await remote.ImportAsync(call, display, ct),
                async engine =>
                {
                    var summary = await engine.GetRequiredService<CustomerImporter>().ImportFileAsync(call.Path, await ToRequestAsync(engine, call, ct), display, ct);
                    display.Done();
                    return new DataAnswer(summary.ToText(), !summary.Cancelled);
                });
        });
        import.Subcommands.Add(customers);
        return import;
    }

    public static Command Export()
    {
        var export = new Command("export", "Export data from the store.");
        var file = new Argument<string>("file") { Description = "The CSV file to write (replaced when it exists)." };
        var mapping = new Option<string?>("--mapping") { Description = "Mapping file: writes its columns, in its order, under its column names." };
        var asUser = AsOption();
        var customers = new Command("customers", "Write every customer (with --as: every customer that user may export, without the fields hidden from them) as CSV that `crm import customers` reads back.") { file, mapping, asUser };
        customers.TreatUnmatchedTokensAsErrors = false;
        customers.SetAction((parse, ct) =>
        {
            var call = new PathCall(Path.GetFullPath(parse.GetValue(file)!), Full(parse.GetValue(mapping)), parse.GetValue(asUser));
            return RunAsync(parse, ct, remote => remote.PostAsync("data/export", call, ct), engine => ExportAsync(engine, call, ct));
        });
        export.Subcommands.Add(customers);
        return export;
    }

    public static Command Duplicates()
    {
        var duplicates = new Command("duplicates", "Duplicate customers.");
        var output = new Option<string?>("--out") { Description = "Write every group to this CSV file (group, customerId, name, rule, score)." };
        var scan = new Command("scan", "Find groups of duplicates among all customers (e-mail, phone, similar name at the same postcode/city).") { output };
        scan.TreatUnmatchedTokensAsErrors = false;
        scan.SetAction((parse, ct) =>
        {
            var call = new PathCall(Full(parse.GetValue(output)) ?? "", null);
            return RunAsync(parse, ct,
                remote => remote.PostAsync("data/duplicates/scan", call, ct),
                async engine =>
                {
                    var result = await engine.GetRequiredService<DuplicateScanner>().ScanAsync(Blank(call.Path), new Progress<string>(Console.Error.WriteLine), ct);
                    return new DataAnswer(result.ToText(Blank(call.Path)), true);
                });
        });
        duplicates.Subcommands.Add(scan);
        return duplicates;
    }

    public static Command Customers()
    {
        var customers = new Command("customers", "One customer: merge two, erase one (GDPR), export all data held about one.");

        var keep = new Argument<string>("keep") { Description = "Id of the customer that stays." };
        var remove = new Argument<string>("remove") { Description = "Id of the customer merged into it (deleted; its id redirects)." };
        var force = new Option<bool>("--force") { Description = "Merge even when external ids or custom fields disagree (the kept values win)." };
        var asUser = AsOption();
        var merge = new Command("merge", "Merge <remove> into <keep>: fields combined, activities/orders/consents moved, a redirect left. Safe to run again.") { keep, remove, force, asUser };
        merge.TreatUnmatchedTokensAsErrors = false;
        merge.SetAction((parse, ct) =>
        {
            var call = new MergeCall(parse.GetValue(keep)!, parse.GetValue(remove)!, parse.GetValue(force), parse.GetValue(asUser) ?? Environment.UserName, parse.GetValue(asUser));
            return RunAsync(parse, ct, remote => remote.PostAsync("data/customers/merge", call, ct), engine => MergeAsync(engine, call, ct));
        });
        customers.Subcommands.Add(merge);

        var id = new Argument<string>("id") { Description = "Customer id." };
        var reason = new Option<string>("--reason") { Description = "Why (kept in the audit stub), for example the request number.", Required = true };
        var eraseAs = AsOption();
        var erase = new Command("erase", "Erase a customer's personal data (card, activities, consents, audit values, mail sent to them); an audit stub stays.") { id, reason, eraseAs };
        erase.TreatUnmatchedTokensAsErrors = false;
        erase.SetAction((parse, ct) =>
        {
            var call = new EraseCall(parse.GetValue(id)!, parse.GetValue(reason)!, parse.GetValue(eraseAs) ?? Environment.UserName, parse.GetValue(eraseAs));
            return RunAsync(parse, ct, remote => remote.PostAsync("data/customers/erase", call, ct), engine => EraseAsync(engine, call, ct));
        });
        customers.Subcommands.Add(erase);

        var exportId = new Argument<string>("id") { Description = "Customer id." };
        var file = new Argument<string>("file") { Description = "The JSON file to write." };
        var exportAs = AsOption();
        var export = new Command("export", "Write everything held about one customer as JSON: card, activities, orders, consents, audit history, segments.") { exportId, file, exportAs };
        export.TreatUnmatchedTokensAsErrors = false;
        export.SetAction((parse, ct) =>
        {
            var call = new CustomerExportCall(parse.GetValue(exportId)!, Path.GetFullPath(parse.GetValue(file)!), parse.GetValue(exportAs));
            return RunAsync(parse, ct, remote => remote.PostAsync("data/customers/export", call, ct), engine => CustomerExportAsync(engine, call, ct));
        });
        customers.Subcommands.Add(export);
        return customers;
    }

    // ------------------------------------------------------------------ control channel (service side)

    /// <summary>The routes the verbs use while the service runs. Mapped by the control channel.</summary>
    public static void MapControl(WebApplication app, IServiceProvider services)
    {
        app.MapPost("/data/import", async (ImportCall call, HttpResponse response, CancellationToken ct) =>
        {
            // Progress lines, then the summary: newline-delimited JSON, flushed as it goes.
            response.ContentType = "application/x-ndjson";
            async Task Send(ImportLine line)
            {
                await response.WriteAsync(JsonSerializer.Serialize(line, ControlJson.Options) + "\n", ct);
                await response.Body.FlushAsync(ct);
            }

            var progress = new StreamProgress();
            var work = ImportWithRequestAsync();
            async Task<ImportSummary> ImportWithRequestAsync() =>
                await services.GetRequiredService<CustomerImporter>().ImportFileAsync(call.Path, await ToRequestAsync(services, call, ct), progress, ct);
            while (!work.IsCompleted)
            {
                await Task.WhenAny(work, Task.Delay(TimeSpan.FromSeconds(1), ct));
                if (progress.Take() is { } p)
                {
                    await Send(new ImportLine(p, null, true, null));
                }
            }

            try
            {
                var summary = await work;
                await Send(new ImportLine(null, summary.ToText(), !summary.Cancelled, null));
            }
            catch (Exception ex) when (Expected(ex))
            {
                await Send(new ImportLine(null, null, false, ex.Message));
            }
        });
        app.MapPost("/data/export", (PathCall call, CancellationToken ct) => Answer(() => ExportAsync(services, call, ct)));
        app.MapPost("/data/duplicates/scan", (PathCall call, CancellationToken ct) => Answer(async () =>
            new DataAnswer((await services.GetRequiredService<DuplicateScanner>().ScanAsync(Blank(call.Path), null, ct)).ToText(Blank(call.Path)), true)));
        app.MapPost("/data/customers/merge", (MergeCall call, CancellationToken ct) => Answer(() => MergeAsync(services, call, ct)));
        app.MapPost("/data/customers/erase", (EraseCall call, CancellationToken ct) => Answer(() => EraseAsync(services, call, ct)));
        app.MapPost("/data/customers/export", (CustomerExportCall call, CancellationToken ct) => Answer(() => CustomerExportAsync(services, call, ct)));
    }

    // ------------------------------------------------------------------ the work (in the service or in this process)

    private static async Task<DataAnswer> ExportAsync(IServiceProvider services, PathCall call, CancellationToken ct) =>
        ExportText(await services.GetRequiredService<CustomerExporter>().ExportFileAsync(call.Path, call.Mapping, ct, await AccessAsync(services, call.As, ct)));

    private static async Task<DataAnswer> MergeAsync(IServiceProvider services, MergeCall call, CancellationToken ct) =>
        new((await services.GetRequiredService<CustomerMerger>().MergeAsync(call.Keep, call.Remove, call.Force, call.User, ct,
            await AccessAsync(services, call.As, ct))).ToText(), true);

    private static async Task<DataAnswer> EraseAsync(IServiceProvider services, EraseCall call, CancellationToken ct) =>
        new((await services.GetRequiredService<CustomerEraser>().EraseAsync(call.Id, call.Reason, call.User, ct, await AccessAsync(services, call.As, ct))).ToText(), true);

    private static async Task<DataAnswer> CustomerExportAsync(IServiceProvider services, CustomerExportCall call, CancellationToken ct)
    {
        await services.GetRequiredService<CustomerDataExport>().ExportFileAsync(call.Id, call.Path, ct, await AccessAsync(services, call.As, ct));
        return new DataAnswer($"customer {call.Id} written to {call.Path}\n", true);
    }

    private static Task<AccessContext?> AccessAsync(IServiceProvider services, string? user, CancellationToken ct) =>
        ActingUser.ContextAsync(services.GetRequiredService<SecurityAdministration>(), user, m => new CustomerOperationException(m), ct);

    private static async Task<IResult> Answer(Func<Task<DataAnswer>> work)
    {
        try
        {
            return Results.Json(await work(), ControlJson.Options);
        }
        catch (Exception ex) when (Expected(ex))
        {
            return Results.Json(new ControlError(ex.Message), ControlJson.Options, statusCode: StatusCodes.Status409Conflict);
        }
    }

    private static bool Expected(Exception ex) =>
        ex is MappingException or CustomerOperationException or IOException or UnauthorizedAccessException or Abstractions.Store.StoreException;

    /// <summary>Keeps the latest progress for the stream to send once a second.</summary>
    private sealed class StreamProgress : IProgress<ImportProgress>
    {
        private ImportProgress? _latest;

        public void Report(ImportProgress value) => Interlocked.Exchange(ref _latest, value);

        public ImportProgress? Take() => Interlocked.Exchange(ref _latest, null);
    }

    // ------------------------------------------------------------------ running a verb

    private static async Task<ImportRequest> ToRequestAsync(IServiceProvider services, ImportCall call, CancellationToken ct) => new()
    {
        MappingPath = call.Mapping,
        Delimiter = call.Delimiter,
        Encoding = call.Encoding,
        DryRun = call.DryRun,
        User = call.User,
        Access = await AccessAsync(services, call.As, ct),
    };

    private static DataAnswer ExportText(ExportSummary s) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{s.Customers} customers written to {s.File} ({s.Columns} columns) in {s.Elapsed.TotalSeconds:0.0} s\n"), true);

    private static string? Full(string? path) => string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(path);

    private static string? Blank(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<DataClient, Task<DataAnswer>> remote,
        Func<IServiceProvider, Task<DataAnswer>> local)
    {
        var crm = CrmCommandLine.LoadConfiguration(parse);
        var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
        DataAnswer answer;
        try
        {
            if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
            {
                using var client = new DataClient(endpoint);
                answer = await remote(client);
            }
            else
            {
                answer = await InProcessAsync(crm, local, ct);
            }
        }
        catch (Exception ex) when (ex is MappingException or CustomerOperationException)
        {
            throw new CommandRefusedException(ex.Message);
        }

        Console.Write(answer.Text);
        return answer.Ok ? ExitCodes.Ok : ExitCodes.Refused;
    }

    /// <summary>
    /// Background parts of the service a data command does not need: they would only compete with it for the machine
    /// (the scheduler and the mail sender would even do the service's work from a command). Their state is durable, so
    /// the service takes everything up where it is when it starts: due jobs, queued mail, the webhooks' and segments'
    /// positions in the change feed. Kept: store, pipeline, async handler deliveries, plugins, event rules, duplicate rules.
    /// </summary>
    private static readonly HashSet<string> NotForDataCommands = new(StringComparer.Ordinal)
    {
        "ApiServer", "ControlChannelService", "ReadyAnnouncer", "SchedulerService", "OutboxSender", "WebhookDispatcher", "SegmentService",
    };

    /// <summary>The engine in this process, for one command: the store side of the service (no listeners, no background senders).</summary>
    private static async Task<DataAnswer> InProcessAsync(CrmConfiguration crm, Func<IServiceProvider, Task<DataAnswer>> local, CancellationToken ct)
    {
        var problems = ConfigChecker.Check(crm.Root, crm.ContentRoot, AppContext.BaseDirectory)
            .Where(p => ConfigChecker.IsError(p, atStart: true)).ToList();
        if (problems.Count > 0)
        {
            throw new CommandRefusedException(ConfigChecker.Format(problems, atStart: true), ExitCodes.Usage);
        }

        var dataDirectory = AdminCommands.StoreOptionsOf(crm).DataDirectory;
        using var instanceLock = InstanceLock.Acquire(dataDirectory);
        // Engine log lines stay out of the command's output; the command prints its own result.
        using var quiet = new NLog.LogFactory();
        var builder = EngineHost.CreateBuilder(crm, quiet);
        var hosted = builder.Services.Where(d => d.ServiceType == typeof(IHostedService)).ToList();
        foreach (var d in hosted)
        {
            builder.Services.Remove(d);
        }

        builder.Services.AddSingleton<IHostedService>(sp => new SelectedServices(hosted.Select(d => Resolve(sp, d))
            .Where(h => !NotForDataCommands.Contains(h.GetType().Name)).ToList()));
        using var host = builder.Build();
        try
        {
            await host.StartAsync(ct);
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or CommandRefusedException))
        {
            // Escaping here, this was an unhandled exception: the process aborted with exit code 134 (seen in CI when a
            // port the full engine wanted was taken). It is the documented exit code 3 with one line instead.
            throw new CommandRefusedException($"the engine could not start for this command: {ex.GetBaseException().Message}", ExitCodes.Failed);
        }

        try
        {
            return await local(host.Services);
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or CommandRefusedException or MappingException or CustomerOperationException))
        {
            throw new CommandRefusedException($"the command failed: {ex.GetBaseException().Message}", ExitCodes.Failed);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    private static IHostedService Resolve(IServiceProvider sp, ServiceDescriptor d) =>
        (IHostedService)(d.ImplementationInstance ?? d.ImplementationFactory?.Invoke(sp)
            ?? ActivatorUtilities.CreateInstance(sp, d.ImplementationType!));

    /// <summary>Starts the chosen hosted services in registration order and stops them in reverse, as the host would.</summary>
    private sealed class SelectedServices(IReadOnlyList<IHostedService> services) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            foreach (var s in services)
            {
                await s.StartAsync(cancellationToken);
            }
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            foreach (var s in services.Reverse())
            {
                await s.StopAsync(cancellationToken);
            }
        }
    }

    /// <summary>The verbs' side of the control channel.</summary>
    private sealed class DataClient : IDisposable
    {
        private readonly HttpClient _http;

        public DataClient(ControlEndpoint endpoint)
        {
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) => await endpoint.ConnectAsync(TimeSpan.FromSeconds(5), ct),
                UseProxy = false,
            };
            _http = new HttpClient(handler) { BaseAddress = new Uri("http://crm-control/"), Timeout = Timeout.InfiniteTimeSpan };
        }

        public async Task<DataAnswer> PostAsync<T>(string path, T body, CancellationToken ct)
        {
            using var response = await _http.PostAsJsonAsync(path, body, ControlJson.Options, ct);
            await ThrowUnlessOkAsync(response, ct);
            return await response.Content.ReadFromJsonAsync<DataAnswer>(ControlJson.Options, ct) ?? throw new CommandRefusedException("the service sent an empty answer");
        }

        public async Task<DataAnswer> ImportAsync(ImportCall call, ProgressDisplay display, CancellationToken ct)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "data/import") { Content = JsonContent.Create(call, options: ControlJson.Options) };
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            await ThrowUnlessOkAsync(response, ct);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            while (await reader.ReadLineAsync(ct) is { } text)
            {
                var line = JsonSerializer.Deserialize<ImportLine>(text, ControlJson.Options)!;
                if (line.Progress is { } p)
                {
                    display.Report(p);
                    continue;
                }

                display.Done();
                return line.Error is null ? new DataAnswer(line.Summary ?? "", line.Ok) : throw new CommandRefusedException(line.Error);
            }

            throw new CommandRefusedException("the service ended the import without a summary (see its log)");
        }

        private static async Task ThrowUnlessOkAsync(HttpResponseMessage response, CancellationToken ct)
        {
            if (response.StatusCode == HttpStatusCode.NotFound && response.Content.Headers.ContentType?.MediaType != "application/json")
            {
                throw new CommandRefusedException("the running service does not serve the data commands (its control channel has no /data routes); stop it and run the command again");
            }

            if (!response.IsSuccessStatusCode)
            {
                var error = await response.Content.ReadFromJsonAsync<ControlError>(ControlJson.Options, ct);
                throw new CommandRefusedException(error?.Error ?? response.ReasonPhrase ?? "error");
            }
        }

        public void Dispose() => _http.Dispose();
    }

    /// <summary>
    /// Import progress: one line rewritten in place on a terminal; plain lines at most every 5 seconds when the output
    /// is redirected or CI=true (logs stay readable).
    /// </summary>
    private sealed class ProgressDisplay : IProgress<ImportProgress>
    {
        private readonly bool _live = !Console.IsOutputRedirected && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        private DateTimeOffset _lastPlain = DateTimeOffset.MinValue;
        private bool _drawn;

        public void Report(ImportProgress value)
        {
            var eta = value.Eta is { } e ? $", ETA {e:hh\\:mm\\:ss}" : "";
            var percent = value.BytesTotal > 0 ? $" ({100.0 * value.BytesRead / value.BytesTotal:0}%)" : "";
            var text = string.Create(CultureInfo.InvariantCulture,
                $"{value.Rows} rows{percent}: {value.Created} created, {value.Updated} updated, {value.Rejected} rejected, {value.RowsPerSecond:0} rows/s{eta}");
            if (_live)
            {
                Console.Write("\r" + text.PadRight(Math.Max(text.Length, Console.WindowWidth > 0 ? Console.WindowWidth - 1 : 0)));
                _drawn = true;
            }
            else if (DateTimeOffset.UtcNow - _lastPlain >= TimeSpan.FromSeconds(5))
            {
                _lastPlain = DateTimeOffset.UtcNow;
                Console.WriteLine(text);
            }
        }

        public void Done()
        {
            if (_drawn)
            {
                Console.WriteLine();
                _drawn = false;
            }
        }
    }
}

/// <summary>
/// The mail outbox's part of an erase: waiting mail to the customer is suppressed and sent mail loses address, name and
/// model (<see cref="Mail.MailAdministration.ForgetCustomerAsync"/>). A hook, because DataExchange does not know Mail.
/// </summary>
internal sealed class MailErasureStep(Mail.MailAdministration mail) : ICustomerErasureStep
{
    public async Task<string> EraseAsync(string customerId, CancellationToken cancellationToken)
    {
        var answer = await mail.ForgetCustomerAsync(customerId);
        if (answer.Error is { } error)
        {
            throw new CustomerOperationException($"customer {customerId}: the card is erased, but the mail outbox refused: {error}; run the erase again");
        }

        var body = JsonSerializer.SerializeToElement(answer.Body, ControlJson.Options);
        return string.Create(CultureInfo.InvariantCulture,
            $"mail: {Count(body, "suppressed")} waiting messages suppressed, {Count(body, "scrubbed")} messages scrubbed of address, name and model");
    }

    private static int Count(JsonElement body, string name) =>
        body.ValueKind == JsonValueKind.Object && body.TryGetProperty(name, out var v) && v.TryGetInt32(out var n) ? n : 0;
}

/// <summary>The <c>--as &lt;user&gt;</c> of the verbs that act as a CRM user (data, rules, templates).</summary>
internal static class ActingUser
{
    /// <summary>
    /// The access of <paramref name="user"/>, or null without one (the machine operator, every right). An unknown or
    /// deactivated user is refused with <paramref name="refuse"/>'s exception before any work.
    /// </summary>
    public static async Task<AccessContext?> ContextAsync(SecurityAdministration? security, string? user, Func<string, Exception> refuse, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(user))
        {
            return null;
        }

        if (security is null)
        {
            throw refuse($"--as '{user}': the access model is not available in this engine");
        }

        var snapshot = await security.Directory.SnapshotAsync(ct);
        return !snapshot.Users.TryGetValue(user, out var known) ? throw refuse($"--as '{user}': there is no such user (crm users list shows them)")
            : known.Deactivated ? throw refuse($"--as '{user}': the user is deactivated")
            : await security.ContextForAsync(user, null, ct);
    }
}
