using System.Collections.Concurrent;
using CrmEngine.Api;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Customers;
using CrmEngine.DataExchange.Duplicates;
using CrmEngine.Abstractions.Model;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CrmEngine.DataExchange.Api;

/// <summary>Duplicate scans started through the API: they run in the background; their state is kept in memory.</summary>
internal sealed class DuplicateScans(DuplicateScanner scanner)
{
    private readonly ConcurrentDictionary<string, ScanState> _scans = new(StringComparer.Ordinal);

    public sealed class ScanState
    {
        public required string Id { get; init; }
        public string Status { get; set; } = "running";
        public string? Progress { get; set; }
        public string? Error { get; set; }
        public DuplicateScanResult? Result { get; set; }
    }

    public ScanState Start()
    {
        var state = new ScanState { Id = Guid.CreateVersion7().ToString("N") };
        _scans[state.Id] = state;
        _ = Task.Run(async () =>
        {
            try
            {
                state.Result = await scanner.ScanAsync(null, new Progress<string>(p => state.Progress = p));
                state.Status = "done";
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                state.Error = ex.Message;
                state.Status = "failed";
            }
        });
        return state;
    }

    public ScanState? Get(string id) => _scans.GetValueOrDefault(id);
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
                    Authorize = CustomerAccess.ForImport(await http.HttpContext.CrmAccessAsync()),
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

        api.MapPost("/duplicates/scans", () =>
        {
            var state = scans.Start();
            return Results.Accepted($"/api/duplicates/scans/{state.Id}", new { state.Id, state.Status });
        }).RequireAuthorization(ApiPolicies.Write);

        api.MapGet("/duplicates/scans/{id}", (string id) => scans.Get(id) is { } s
            ? Results.Ok(new { s.Id, s.Status, s.Progress, s.Error, s.Result })
            : Results.Problem($"no duplicate scan {id} (scans are kept until the service restarts)", statusCode: StatusCodes.Status404NotFound))
            .RequireAuthorization(ApiPolicies.Read);
    }

    /// <summary>
    /// 403 naming the missing privilege (the API's access problem, logged without data), 404 for a customer that is not
    /// there or not readable by the caller, else <paramref name="otherStatus"/>.
    /// </summary>
    private static IResult Problem(HttpContext http, CustomerOperationException ex, string? id = null, int otherStatus = StatusCodes.Status409Conflict) =>
        ex is { Forbidden: true, Denial: { } denial } ? ApiAccess.Forbidden(http, EntityNames.Customer, id, denial)
        : ApiProblems.Create(ex.NotFound ? 404 : otherStatus, ApiProblems.Title(ex.NotFound ? 404 : otherStatus), ex.Message);
}
