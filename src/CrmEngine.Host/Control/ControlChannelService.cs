using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Hosting;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling.Admin;
using CrmEngine.Scheduling.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Host.Control;

/// <summary>
/// The local control channel: a tiny Kestrel server on a Unix domain socket in the data folder
/// (named pipe on Windows), owner-only, serving the admin endpoints the command line uses while the
/// service runs: health, plugin states, online backup, and a minimal customer write/read for checks.
/// It starts after the store and the plugins, and stops before them.
/// </summary>
internal sealed class ControlChannelService(
    IServiceProvider services,
    IConfiguration configuration,
    EngineState state,
    ILoggerFactory loggerFactory) : IHostedService, IAsyncDisposable
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("CrmEngine.Control");
    private WebApplication? _app;
    private ControlEndpoint? _endpoint;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var endpoint = ControlEndpoint.From(configuration, state.ContentRoot);
        if (!endpoint.Enabled)
        {
            _logger.LogInformation("Control channel disabled (Host:ControlEnabled=false): backup and plugins list work only while the service is stopped.");
            return;
        }

        if (await endpoint.IsListeningAsync(cancellationToken))
        {
            throw new CommandRefusedException($"another CrmEngine is already running on {endpoint.DataDirectory} (control channel {endpoint}).");
        }

        if (endpoint.SocketPath is { } stale && File.Exists(stale))
        {
            File.Delete(stale);
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "CrmEngine.Control",
            ContentRootPath = state.ContentRoot,
            Args = [],
        });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrelCore();
        if (endpoint.PipeName is { } pipe && OperatingSystem.IsWindows())
        {
            builder.WebHost.UseNamedPipes();
            builder.WebHost.ConfigureKestrel(k => k.ListenNamedPipe(pipe));
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(endpoint.SocketPath!)!);
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(endpoint.SocketPath!));
        }

        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter());
        });

        var app = builder.Build();
        Map(app);
        await app.StartAsync(cancellationToken);
        _app = app;
        _endpoint = endpoint;

        if (endpoint.SocketPath is { } socket && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        _logger.LogInformation("Control channel listening on {Endpoint}", endpoint);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        state.Status = "stopping";
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync(cancellationToken);
            await app.DisposeAsync();
        }

        if (_endpoint?.SocketPath is { } socket)
        {
            try
            {
                File.Delete(socket);
            }
            catch (IOException)
            {
                // Removed already, or will be replaced by the next start.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.DisposeAsync();
        }
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/health", async (CancellationToken ct) => Results.Json(await HealthAsync(ct), ControlJson.Options));

        app.MapGet("/plugins", () => Results.Json(Plugins(), ControlJson.Options));

        app.MapPost("/backup", async (BackupRequest request, CancellationToken ct) =>
        {
            if (string.IsNullOrWhiteSpace(request.Path) || !Path.IsPathFullyQualified(request.Path))
            {
                return Error(StatusCodes.Status400BadRequest, "the backup path must be an absolute file path");
            }

            try
            {
                var database = services.GetRequiredService<CrmDatabase>();
                await database.BackupAsync(request.Path, ct);
                _logger.LogInformation("Backup written to {Path}", request.Path);
                return Results.Json(new BackupResult(request.Path, new FileInfo(request.Path).Length), ControlJson.Options);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or StoreException or ArgumentException)
            {
                _logger.LogWarning(ex, "Backup to {Path} failed", request.Path);
                return Error(StatusCodes.Status409Conflict, $"backup to {request.Path} failed: {ex.Message}");
            }
        });

        app.MapPost("/customers", async (Customer customer, CancellationToken ct) =>
        {
            try
            {
                var created = await Store().Customers.CreateAsync(customer, ct);
                return Results.Json(created, ControlJson.Options, statusCode: StatusCodes.Status201Created);
            }
            catch (StoreException ex)
            {
                return Error(StatusCodes.Status400BadRequest, ex.Message);
            }
        });

        app.MapGet("/customers/{id}/timeline", async (string id, CancellationToken ct) =>
        {
            var store = Store();
            var customer = await store.Customers.GetAsync(id, ct);
            if (customer is null)
            {
                return Error(StatusCodes.Status404NotFound, $"customer '{id}' does not exist");
            }

            var activities = await store.Activities.FindAsync(IndexedField.CustomerId, id, 1000, cancellationToken: ct);
            return Results.Json(new { customer, activities }, ControlJson.Options);
        });

        // Rules: dry runs and segment membership (crm rules test, crm segments ...).
        if (services.GetService<CrmEngine.Rules.Admin.RulesAdministration>() is { } rules)
        {
            Commands.RulesCommands.MapControl(app, rules, services.GetService<CrmEngine.Security.SecurityAdministration>());
        }

        // Mail outbox (crm mail list|show|retry).
        if (services.GetService<CrmEngine.Mail.MailAdministration>() is { } mail)
        {
            Commands.MailCommands.MapControl(app, mail);
        }

        // Users, teams, roles, units, shares, owners transfer (crm security|users|teams|roles|units|shares|owners).
        Commands.SecurityCommands.MapControl(app, services);

        // Customer data in and out (crm import/export customers, duplicates scan, customers merge|erase|export).
        Commands.DataCommands.MapControl(app, services);

        // API keys (crm apikeys ...): the control channel, not the API, so the first key needs no key.
        if (services.GetService<CrmEngine.Api.Keys.ApiKeyAdministration>() is { } apiKeys)
        {
            Commands.ApiKeysCommands.MapControl(app, apiKeys);
        }

        // Webhook subscriptions and deliveries (crm webhooks ...).
        if (services.GetService<CrmEngine.Webhooks.WebhookAdministration>() is { } webhooks)
        {
            Commands.WebhooksCommands.MapControl(app, webhooks);
        }

        // Scheduled jobs and business calendars (crm jobs ..., crm calendars show).
        if (services.GetService<SchedulingControl>() is { } scheduling)
        {
            app.MapGet("/jobs", async (string? state, string? plugin, string? kind, int? limit, CancellationToken ct) =>
                Answer(await scheduling.ListJobsAsync(Blank(state), Blank(plugin), Blank(kind), limit, ct)));
            app.MapGet("/jobs/{id}", async (string id, CancellationToken ct) => Answer(await scheduling.ShowJobAsync(id, 20, ct)));
            app.MapPost("/jobs/{id}/{action}", async (string id, string action, CancellationToken ct) =>
                Answer(await scheduling.ActAsync(id, action, ct)));
            app.MapGet("/calendars/{name}", (string name, string? from, int? days) => Answer(scheduling.ShowCalendar(name, Blank(from), days)));
        }
    }

    private static IResult Answer(ControlAnswer answer) =>
        answer.Error is null ? Results.Json(answer.Body, ControlJson.Options, statusCode: answer.Status) : Error(answer.Status, answer.Error);

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private ICrmStore Store() => services.GetRequiredService<IStoreProvider>().ForActor("admin");

    private IReadOnlyList<PluginDto> Plugins() =>
        services.GetRequiredService<PluginManager>().Plugins.Select(ToDto).ToList();

    internal static PluginDto ToDto(PluginInfo p) => new(p.Id, p.Name, p.Version, p.Folder, p.State.ToString(), p.Reason);

    private async Task<HealthDto> HealthAsync(CancellationToken ct)
    {
        var database = services.GetRequiredService<CrmDatabase>();
        var sequence = await Store().Changes.LastSequenceAsync(ct);
        var scheduler = services.GetService<JobAdministration>() is { } jobs ? await jobs.HealthAsync(ct) : null;
        return new HealthDto(state.Status, Environment.ProcessId, EngineState.Version, state.StartedAt, state.ReadyAt,
            state.ContentRoot, state.EnvironmentName, database.FilePath, sequence, Plugins(), scheduler);
    }

    private static IResult Error(int status, string message) =>
        Results.Json(new ControlError(message), ControlJson.Options, statusCode: status);
}
