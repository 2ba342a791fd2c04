using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Hosting;
using CrmEngine.Api.Keys;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Api.Tests.Support;

/// <summary>What an <see cref="ApiTestHost"/> starts with.</summary>
public sealed class ApiTestHostOptions
{
    /// <summary>Configuration values (for example <c>["Api:MaxRequestBodyBytes"] = "2048"</c>); they override the harness defaults.</summary>
    public Dictionary<string, string?> Settings { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Fixture plugins (folder names under the test output's <c>fixtures/</c>) copied into the engine's plugin folder.</summary>
    public List<string> Plugins { get; } = [];

    /// <summary>Extra engine services (endpoint modules, health contributors, fakes); run after the engine's own registrations.</summary>
    public Action<IServiceCollection, IConfiguration>? ConfigureServices { get; set; }

    /// <summary>True: the API is registered (and so started) before the plugin host, so every plugin becomes Active after the API started.</summary>
    public bool ApiBeforePlugins { get; set; }

    /// <summary>False: no API keys are made at start (the read/write/admin clients then have no key).</summary>
    public bool CreateKeys { get; set; } = true;
}

/// <summary>
/// The engine (core store, plugin host, scheduler and the HTTP API) in a generic host with a temporary data folder,
/// real Kestrel on a free loopback port, one API key per scope, and HttpClients that send them. Dispose it to stop
/// the engine and remove the folder. Log output is captured in <see cref="Log"/>.
/// </summary>
public sealed class ApiTestHost : IAsyncDisposable
{
    private readonly List<HttpClient> _clients = [];
    private readonly IHost _host;

    private ApiTestHost(IHost host, string root)
    {
        _host = host;
        Root = root;
    }

    /// <summary>The temporary folder (content root); the store lives in <c>data/</c> below it, plugins in <c>plugins/</c>.</summary>
    public string Root { get; }

    public string DataDirectory => Path.Combine(Root, "data");

    public string PluginDirectory => Path.Combine(Root, "plugins");

    /// <summary>The API's address, for example <c>http://127.0.0.1:40123/</c>.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The engine's services (store provider, change feed, plugin manager ...).</summary>
    public IServiceProvider Services => _host.Services;

    /// <summary>The API web application's own services (its endpoint data source, for example).</summary>
    public IServiceProvider ApiServices => _host.Services.GetRequiredService<ApiServer>().Services
                                           ?? throw new InvalidOperationException("the API is not running");

    /// <summary>Everything the engine and the API logged so far (all levels), one line per entry with exceptions.</summary>
    public string Log => _log.Text;

    public string ReadKey { get; private set; } = "";
    public string WriteKey { get; private set; } = "";
    public string AdminKey { get; private set; } = "";

    /// <summary>Sends no key.</summary>
    public HttpClient Anonymous { get; private set; } = null!;

    /// <summary>Sends the read key (names in the audit log: <c>apikey:test-read</c>).</summary>
    public HttpClient Reader { get; private set; } = null!;

    /// <summary>Sends the write key (<c>apikey:test-write</c>).</summary>
    public HttpClient Writer { get; private set; } = null!;

    /// <summary>Sends the admin key (<c>apikey:test-admin</c>).</summary>
    public HttpClient Admin { get; private set; } = null!;

    private readonly CapturedLog _log = new();
    private int _disposed;

    public static async Task<ApiTestHost> StartAsync(Action<ApiTestHostOptions>? configure = null)
    {
        var options = new ApiTestHostOptions();
        configure?.Invoke(options);
        var root = Path.Combine(Path.GetTempPath(), "crm-api-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        var plugins = Path.Combine(root, "plugins");
        Directory.CreateDirectory(plugins);
        foreach (var fixture in options.Plugins)
        {
            CopyFixture(fixture, Path.Combine(plugins, fixture));
        }

        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["Store:DataDirectory"] = Path.Combine(root, "data"),
            ["PluginHost:Directories:0"] = plugins,
            ["Pipeline:AsyncRetryBaseDelay"] = "00:00:00.010",
            ["Api:Urls"] = "http://127.0.0.1:0",
        };
        foreach (var (k, v) in options.Settings)
        {
            settings[k] = v;
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = root,
            EnvironmentName = "Test",
            DisableDefaults = true,
        });
        builder.Configuration.AddInMemoryCollection(settings);
        var log = new CapturedLog();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddProvider(log);
        builder.Services.AddCrmCore(builder.Configuration);
        if (options.ApiBeforePlugins)
        {
            builder.Services.AddCrmApi(builder.Configuration);
        }

        builder.Services.AddCrmPluginHost(builder.Configuration);
        builder.Services.AddCrmScheduling(builder.Configuration);
        options.ConfigureServices?.Invoke(builder.Services, builder.Configuration);
        if (!options.ApiBeforePlugins)
        {
            builder.Services.AddCrmApi(builder.Configuration);
        }

        var host = builder.Build();
        var test = new ApiTestHost(host, root);
        test._log.Attach(log);
        try
        {
            await host.StartAsync();
            var server = host.Services.GetRequiredService<ApiServer>();
            test.BaseAddress = server.Addresses.Count > 0 ? server.Addresses[0] : new Uri("http://127.0.0.1:1/");
            if (options.CreateKeys)
            {
                test.ReadKey = await test.CreateKeyAsync("test-read", ApiScope.Read);
                test.WriteKey = await test.CreateKeyAsync("test-write", ApiScope.Write);
                test.AdminKey = await test.CreateKeyAsync("test-admin", ApiScope.Admin);
            }

            test.Anonymous = test.Client(null);
            test.Reader = test.Client(test.ReadKey.Length > 0 ? test.ReadKey : null);
            test.Writer = test.Client(test.WriteKey.Length > 0 ? test.WriteKey : null);
            test.Admin = test.Client(test.AdminKey.Length > 0 ? test.AdminKey : null);
            return test;
        }
        catch
        {
            await test.DisposeAsync();
            throw;
        }
    }

    /// <summary>Creates a key the way <c>crm apikeys create</c> does and returns it (shown once).</summary>
    public async Task<string> CreateKeyAsync(string name, ApiScope scope, DateTimeOffset? expires = null) =>
        (await Services.GetRequiredService<ApiKeyAdministration>().CreateAsync(name, scope, expires)).Key;

    public Task RevokeKeyAsync(string nameOrId) => Services.GetRequiredService<ApiKeyAdministration>().RevokeAsync(nameOrId);

    /// <summary>A client for the API that sends <paramref name="apiKey"/> in <c>X-Api-Key</c> (none when null). Disposed with the host.</summary>
    public HttpClient Client(string? apiKey)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(100) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }

        client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        _clients.Add(client);
        return client;
    }

    /// <summary>A store acting as <paramref name="actor"/>, to arrange data or check what the API wrote.</summary>
    public ICrmStore Store(string actor = "test") => Services.GetRequiredService<IStoreProvider>().ForActor(actor);

    public T GetService<T>() where T : notnull => Services.GetRequiredService<T>();

    /// <summary>JSON body with the API's content type.</summary>
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>JSON body from an object (camelCase, as the API writes).</summary>
    public static StringContent Json<T>(T value) => Json(JsonSerializer.Serialize(value, ApiJson.Options));

    /// <summary>Reads a response body as JSON (with the API's options); fails with the body when it is not.</summary>
    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        try
        {
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new Xunit.Sdk.XunitException($"{(int)response.StatusCode} {response.StatusCode}: body is not JSON: {text}");
        }
    }

    /// <summary>Asserts the response is a problem (RFC 7807) with <paramref name="status"/>; returns its JSON.</summary>
    public static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, int status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal(status, json.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("title").GetString()));
        return json;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var client in _clients)
        {
            client.Dispose();
        }

        try
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await _host.StopAsync(stop.Token);
        }
        finally
        {
            _host.Dispose();
            try
            {
                Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
                // A plugin assembly may still be mapped; the temp folder is left for the OS to clean.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static void CopyFixture(string fixture, string target)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "fixtures", fixture);
        Assert.True(Directory.Exists(source), $"fixture plugin {source} was not built into the test output");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to, overwrite: true);
        }
    }

    /// <summary>Collects every log entry of the host (all categories, all levels).</summary>
    private sealed class CapturedLog : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _lines = new();
        private CapturedLog? _target;

        public string Text => string.Join('\n', (_target ?? this)._lines);

        public void Attach(CapturedLog target) => _target = target;

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLog owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                // The structured state too (every value), so a secret hidden in a property is found as well as one in the message.
                var values = state is IEnumerable<KeyValuePair<string, object?>> pairs
                    ? string.Join(' ', pairs.Select(p => $"{p.Key}={p.Value}"))
                    : "";
                owner._lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} [{values}]{(exception is null ? "" : " " + exception)}");
            }
        }
    }
}

/// <summary>Waits for a condition with a generous timeout (the CI machine is slow); never a fixed sleep.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out waiting until {what}");
            }

            await Task.Delay(20);
        }
    }

    public static Task TrueAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        TrueAsync(() => Task.FromResult(condition()), what, timeout);
}
