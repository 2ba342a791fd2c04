using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Encodings.Web;
using System.Text.Json;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Webhooks.Tests;

/// <summary>
/// The engine core with webhooks and their API module, served by real Kestrel on a free loopback port. The API
/// platform's key authentication is stood in for by a header scheme with the same policy names (ApiPolicies), so
/// the module is exercised over real HTTP exactly as the API maps it (under /api, behind authentication).
/// </summary>
internal sealed class TestEngine : IAsyncDisposable
{
    public const string AdminKey = "admin-key-123";
    public const string ReadKey = "read-key-456";

    private readonly WebApplication _app;

    private TestEngine(WebApplication app, string folder, LogSink logs)
    {
        _app = app;
        Folder = folder;
        Logs = logs;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Client = new HttpClient { BaseAddress = new Uri(address) };
        Client.DefaultRequestHeaders.Add("X-Api-Key", AdminKey);
    }

    public string Folder { get; }

    public LogSink Logs { get; }

    /// <summary>Calls the API with the admin key.</summary>
    public HttpClient Client { get; }

    public IServiceProvider Services => _app.Services;

    public ICrmStore Store => Services.GetRequiredService<IStoreProvider>().ForActor("user:tester");

    internal WebhookStore Webhooks => Services.GetRequiredService<WebhookStore>();

    public static async Task<TestEngine> StartAsync(string? folder = null, Dictionary<string, string?>? settings = null, bool webhooks = true,
        LogSink? logs = null, bool security = false, Action<IServiceCollection>? services = null)
    {
        folder ??= NewFolder();
        logs ??= new LogSink();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = folder, EnvironmentName = "Test" });
        builder.WebHost.UseKestrelCore().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddProvider(logs);
        var config = new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = Path.Combine(folder, "data"),
            ["Webhooks:RetryBaseDelay"] = "00:00:00.050",
            ["Webhooks:RetryMaxDelay"] = "00:00:00.200",
            ["Webhooks:MaxAttempts"] = "4",
            ["Webhooks:RequestTimeout"] = "00:00:05",
            ["Webhooks:PollInterval"] = "00:00:00.050",
            // The receivers are loopback listeners; TargetTests turns this off to see the refusal.
            ["Webhooks:AllowPrivateTargets"] = "true",
        };
        foreach (var (key, value) in settings ?? [])
        {
            config[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(config);
        builder.Services.AddCrmCore(builder.Configuration);
        if (security)
        {
            CrmEngine.Security.SecurityServiceCollectionExtensions.AddCrmSecurity(builder.Services);
        }

        if (webhooks)
        {
            builder.Services.AddCrmWebhooks(builder.Configuration);
        }

        services?.Invoke(builder.Services);

        builder.Services.AddRouting();
        builder.Services.AddProblemDetails();
        builder.Services.AddAuthentication(TestKeyAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, TestKeyAuthentication>(TestKeyAuthentication.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(ApiPolicies.Read, p => p.RequireClaim("scope", "read", "write", "admin"))
            .AddPolicy(ApiPolicies.Write, p => p.RequireClaim("scope", "write", "admin"))
            .AddPolicy(ApiPolicies.Admin, p => p.RequireClaim("scope", "admin"));
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        var api = app.MapGroup("/api").RequireAuthorization();
        foreach (var module in app.Services.GetServices<IApiEndpointModule>())
        {
            module.Map(api, app);
        }

        await app.StartAsync();
        return new TestEngine(app, folder, logs);
    }

    public static string NewFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-webhooks-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>Creates a subscription through the API; returns its id and secret.</summary>
    public async Task<(string Id, string Secret)> SubscribeAsync(string url, params string[] events)
    {
        using var response = await Client.PostAsJsonAsync("/api/webhooks", new { url, events, description = "test receiver" });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, text);
        using var doc = JsonDocument.Parse(text);
        return (doc.RootElement.GetProperty("id").GetString()!, doc.RootElement.GetProperty("secret").GetString()!);
    }

    /// <summary>GET as the admin key (a key without a user), or as <paramref name="key"/> (<c>user:anna</c>: an admin key bound to anna).</summary>
    public async Task<JsonElement> GetJsonAsync(string path, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (key is not null)
        {
            request.Headers.Remove("X-Api-Key");
            request.Headers.Add("X-Api-Key", key);
        }

        using var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}\n{Logs.Errors}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public async Task<List<JsonElement>> DeliveriesAsync(string subscriptionId, string? key = null) =>
        (await GetJsonAsync($"/api/webhooks/{subscriptionId}/deliveries", key)).GetProperty("items").EnumerateArray().ToList();

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Stand-in for the API's key authentication: X-Api-Key names a key with one scope.</summary>
internal sealed class TestKeyAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "TestApiKey";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var key = Request.Headers["X-Api-Key"].ToString();
        if (key.StartsWith("user:", StringComparison.Ordinal))
        {
            // An admin key bound to a CRM user (as crm apikeys create --user makes them): the claim names the user.
            var user = key["user:".Length..];
            var bound = new ClaimsIdentity([new Claim(ClaimTypes.Name, "apikey:" + user + "-key"), new Claim("scope", "admin"), new Claim("crm:user", user)], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(bound), SchemeName)));
        }

        var (name, scope) = key switch
        {
            TestEngine.AdminKey => ("apikey:ops-admin", "admin"),
            TestEngine.ReadKey => ("apikey:reporting", "read"),
            "" => (null, null),
            _ => ("", null),
        };
        if (name is null)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (scope is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("unknown API key"));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name), new Claim("scope", scope)], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }
}

/// <summary>Every log line of the engine, rendered with its arguments and exceptions, for "never logged" checks.</summary>
internal sealed class LogSink : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    public string All => string.Join('\n', Lines);

    /// <summary>Warnings and errors, to explain a failed assertion.</summary>
    public string Errors => string.Join('\n', Lines.Where(l => l.StartsWith("Warning", StringComparison.Ordinal) || l.StartsWith("Error", StringComparison.Ordinal)));

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(";", pairs.Select(p => $"{p.Key}={p.Value}")) : "";
            sink.Lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} [{values}] {exception}");
        }
    }
}

internal static class Eventually
{
    /// <summary>Polls until <paramref name="condition"/> holds; generous timeout for a loaded CI machine.</summary>
    public static async Task WaitAsync(Func<Task<bool>> condition, string what, int timeoutSeconds = 60, Func<string>? explain = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            if (await condition())
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for: {what}\n{explain?.Invoke()}");
            }

            await Task.Delay(25);
        }
    }

    public static Task WaitAsync(Func<bool> condition, string what, int timeoutSeconds = 60, Func<string>? explain = null) =>
        WaitAsync(() => Task.FromResult(condition()), what, timeoutSeconds, explain);
}

internal static class Json
{
    public static StringContent Body(string json) => new(json, new MediaTypeHeaderValue("application/json"));
}
