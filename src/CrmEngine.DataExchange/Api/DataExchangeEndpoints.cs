using System.Collections.Concurrent;
using CrmEngine.Api;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Customers;
using CrmEngine.DataExchange.Duplicates;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CrmEngine.DataExchange.Api;

/// <summary>
/// Duplicate scans started through the API: they run in the background, one at a time (a scan reads every customer
/// twice; 140 s at a million); their state is kept in memory until the service restarts.
/// </summary>
internal sealed class DuplicateScans
{
    private readonly Func<IProgress<string>, Task<DuplicateScanResult>> _scan;

    public DuplicateScans(DuplicateScanner scanner) : this(progress => scanner.ScanAsync(null, progress))
    {
    }

    /// <summary>With the scan itself given (tests hold a scan running to see the second start refused).</summary>
    internal DuplicateScans(Func<IProgress<string>, Task<DuplicateScanResult>> scan) => _scan = scan;

    private readonly ConcurrentDictionary<string, ScanState> _scans = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private ScanState? _running;

    public sealed class ScanState
    {
        public required string Id { get; init; }
        public required string StartedBy { get; init; }
        public DateTimeOffset StartedAt { get; init; } = DateTimeOffset.UtcNow;
        public string Status { get; set; } = "running";
        public string? Progress { get; set; }
        public string? Error { get; set; }
        public DuplicateScanResult? Result { get; set; }
    }

    /// <summary>Starts a scan; when one is running, nothing starts and <paramref name="running"/> is that one.</summary>
    public ScanState? Start(string user, out ScanState? running)
    {
        ScanState state;
        lock (_gate)
        {
            running = _running;
            if (running is not null)
            {
                return null;
            }

            state = new ScanState { Id = Guid.CreateVersion7().ToString("N"), StartedBy = user };
            _running = state;
        }

        _scans[state.Id] = state;
        _ = Task.Run(async () =>
        {
            DuplicateScanResult? result = null;
            string? error = null;
            try
            {
                result = await _scan(new Progress<string>(p => state.Progress = p));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                error = ex.Message;
            }

            // Free for the next start before the state says done, so a client that saw "done" may start again.
            lock (_gate)
            {
                _running = null;
            }

            state.Result = result;
            state.Error = error;
            state.Status = error is null ? "done" : "failed";
        });
        return state;
    }

    public ScanState? Get(string id) => _scans.GetValueOrDefault(id);

    /// <summary>
    /// Who may start a scan: it reads every customer card and lists every group, so a user whose roles export customers
    /// at depth all (administrator, auditor, integration, marketing); everyone else is refused naming
    /// <c>customer:export</c>. Reading a scan is open to readers, filtered to what they may read (<see cref="ForReader"/>).
    /// </summary>
    public static AccessDecision MayStart(AccessContext access) =>
        access.Unrestricted || access.DepthOf(EntityNames.Customer, Privilege.Export) == AccessDepth.All
            ? AccessDecision.Allow("customer export at depth all")
            : AccessDecision.Deny(AccessContext.Missing(EntityNames.Customer, Privilege.Export),
                $"a duplicate scan reads every customer, so it needs customer:export at depth all; user '{access.UserId}' has it at depth {AccessContext.Name(access.DepthOf(EntityNames.Customer, Privilege.Export))}");

    /// <summary>
    /// A scan's result as <paramref name="access"/> may see it: every group reduced to the members the user may read,
    /// groups left with fewer than two dropped, renumbered from 1; the counts are of what is shown (customers: those the
    /// user may read now); a member's name is absent when the name is hidden from the user. Unrestricted readers get it whole.
    /// </summary>
    public static async Task<DuplicateScanResult> ForReader(DuplicateScanResult result, AccessContext access, ICrmStore store, CancellationToken ct)
    {
        var filter = access.Filter(EntityNames.Customer);
        if (access.Unrestricted || filter.All)
        {
            return result;
        }

        var nameHidden = access.Fields(EntityNames.Customer).Hidden.Any(h => h.Equals(nameof(Customer.Name), StringComparison.OrdinalIgnoreCase));
        var members = new List<DuplicateGroupMember>();
        var groups = 0;
        foreach (var group in result.Members.GroupBy(m => m.Group))
        {
            var visible = new List<DuplicateGroupMember>();
            foreach (var m in group)
            {
                if (await store.Customers.GetAsync(m.CustomerId, ct) is { } c && filter.Matches(c.Id, c.Owner))
                {
                    visible.Add(m);
                }
            }

            if (visible.Count < 2)
            {
                continue;
            }

            groups++;
            members.AddRange(visible.Select(m => m with { Group = groups, Name = nameHidden ? "" : m.Name }));
        }

        var customers = await VisibleRecords.CountAsync(store.Customers, filter, c => c.Owner, ct);
        return result with { Customers = customers, Groups = groups, CustomersInGroups = members.Count, Members = members };
    }
}

/// <summary>
/// The API endpoints of customer data in and out: import (Write), export (Admin), merge (Write), erase (Admin), one
/// customer's data as JSON (Read), duplicate scans (Write to start, Read for the state). Each acts as the caller's user
/// (<see cref="ApiCaller.CrmAccessAsync"/>): import writes as them, export has only the customers they may export without
/// their hidden fields, merge needs write on the kept and delete on the removed customer, erase delete. A customer the
/// caller may not read is 404; a missing privilege is 403 naming it.
/// </summary>
internal sealed class DataExchangeEndpoints(CustomerImporter importer, CustomerExporter exporter, CustomerMerger merger,
    CustomerEraser eraser, CustomerDataExport dataExport, DuplicateScans scans) : IApiEndpointModule
{
    public sealed record MergeRequest(string Remove, bool Force);

    public sealed record EraseRequest(string Reason);

    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        api.MapPost("/customers/import", async (HttpRequest http, bool? dryRun, string? delimiter, CancellationToken ct) =>
        {
            // The body is the CSV file itself (text/csv), the same file `crm import customers` takes.
            var temp = Path.Combine(Path.GetTempPath(), "crm-import-" + Guid.NewGuid().ToString("N") + ".csv");
            try
            {
                await using (var file = File.Create(temp))
                {
                    await http.Body.CopyToAsync(file, ct);
                }

                var summary = await importer.ImportFileAsync(temp, new ImportRequest
                {
                    DryRun = dryRun ?? false,
                    Delimiter = string.IsNullOrEmpty(delimiter) ? null : delimiter,
                    RejectPath = temp + ".rejects.csv",
                    User = http.HttpContext.CrmUserId(),
                    Access = await http.HttpContext.CrmAccessAsync(),
                }, null, ct);
                return Results.Ok(new
                {
                    summary.Rows, summary.Created, summary.Updated, summary.Unchanged, summary.Rejected, summary.DryRun,
                    elapsedSeconds = summary.Elapsed.TotalSeconds, summary.Warnings, rejects = summary.FirstRejects,
                });
            }
            catch (MappingException ex)
            {
                return Results.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "The file cannot be imported");
            }
            finally
            {
                File.Delete(temp);
                File.Delete(temp + ".rejects.csv");
            }
        }).RequireAuthorization(ApiPolicies.Write).DisableAntiforgery();

        api.MapGet("/customers/export", async (HttpContext http, CancellationToken ct) =>
        {
            var access = await http.CrmAccessAsync();
            if (CustomerAccess.RefusalOf(access.Filter(EntityNames.Customer, Privilege.Export)) is { } refused)
            {
                return Problem(http, refused);
            }

            // The CSV is written to a temporary file first, so a failure is a problem answer, not half a download.
            var temp = Path.Combine(Path.GetTempPath(), "crm-export-" + Guid.NewGuid().ToString("N") + ".csv");
            try
            {
                await exporter.ExportFileAsync(temp, null, ct, access);
                http.Response.Headers.ContentDisposition = "attachment; filename=customers.csv";
                return Results.Bytes(await File.ReadAllBytesAsync(temp, ct), "text/csv; charset=utf-8");
            }
            catch (CustomerOperationException ex)
            {
                return Problem(http, ex);
            }
            finally
            {
                File.Delete(temp);
            }
        }).RequireAuthorization(ApiPolicies.Admin);

        api.MapPost("/customers/{keep}/merge", async (string keep, MergeRequest body, HttpContext http, CancellationToken ct) =>
        {
            try
            {
                var result = await merger.MergeAsync(keep, body.Remove, body.Force, http.CrmUserId(), ct, await http.CrmAccessAsync());
                return Results.Ok(result);
            }
            catch (CustomerOperationException ex)
            {
                return Problem(http, ex, keep);
            }
        }).RequireAuthorization(ApiPolicies.Write);

        api.MapPost("/customers/{id}/erase", async (string id, EraseRequest body, HttpContext http, CancellationToken ct) =>
        {
            try
            {
                return Results.Ok(await eraser.EraseAsync(id, body.Reason, http.CrmUserId(), ct, await http.CrmAccessAsync()));
            }
            catch (CustomerOperationException ex)
            {
                return Problem(http, ex, id, StatusCodes.Status400BadRequest);
            }
        }).RequireAuthorization(ApiPolicies.Admin);

        api.MapGet("/customers/{id}/export", async (string id, HttpContext http, CancellationToken ct) =>
        {
            try
            {
                return Results.Text(await dataExport.ExportJsonAsync(id, ct, await http.CrmAccessAsync()), "application/json");
            }
            catch (CustomerOperationException ex)
            {
                return Problem(http, ex, id);
            }
        }).RequireAuthorization(ApiPolicies.Read);

        api.MapPost("/duplicates/scans", async (HttpContext http) =>
        {
            var access = await http.CrmAccessAsync();
            if (DuplicateScans.MayStart(access) is { Allowed: false } denied)
            {
                return ApiAccess.Forbidden(http, EntityNames.Customer, null, denied);
            }

            if (scans.Start(access.UserId, out var running) is not { } state)
            {
                return ApiProblems.Create(StatusCodes.Status409Conflict, "A duplicate scan is running",
                    $"duplicate scan {running!.Id} is running (started {running.StartedAt:u} by {running.StartedBy}); one scan runs at a time: follow it at /api/duplicates/scans/{running.Id}");
            }

            return Results.Accepted($"/api/duplicates/scans/{state.Id}", new { state.Id, state.Status });
        }).RequireAuthorization(ApiPolicies.Write);

        api.MapGet("/duplicates/scans/{id}", async (string id, HttpContext http, CancellationToken ct) =>
        {
            if (scans.Get(id) is not { } s)
            {
                return Results.Problem($"no duplicate scan {id} (scans are kept until the service restarts)", statusCode: StatusCodes.Status404NotFound);
            }

            var access = await http.CrmAccessAsync();
            var whole = access.Unrestricted || access.Filter(EntityNames.Customer).All;
            // Progress counts every customer read: only for readers who see them all.
            return Results.Ok(new
            {
                s.Id, s.Status, Progress = whole ? s.Progress : null, s.Error,
                Result = s.Result is { } r ? await DuplicateScans.ForReader(r, access, http.CrmStore(), ct) : null,
            });
        }).RequireAuthorization(ApiPolicies.Read);
    }

    /// <summary>
    /// 403 naming the missing privilege (the API's access problem, logged without data), 404 for a customer that is not
    /// there or not readable by the caller, else <paramref name="otherStatus"/>.
    /// </summary>
    private static IResult Problem(HttpContext http, CustomerOperationException ex, string? id = null, int otherStatus = StatusCodes.Status409Conflict) =>
        ex is { Forbidden: true, Denial: { } denial } ? ApiAccess.Forbidden(http, EntityNames.Customer, id, denial)
        : ApiProblems.Create(ex.NotFound ? 404 : otherStatus, ApiProblems.Title(ex.NotFound ? 404 : otherStatus), ex.Message);
}
