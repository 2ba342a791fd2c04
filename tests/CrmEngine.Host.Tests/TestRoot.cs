using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Host.Tests;

/// <summary>
/// A temporary content root: its own appsettings.json (the shipped default, patched per test), data
/// and log folders. Deleted at the end.
/// </summary>
public sealed class TestRoot : IDisposable
{
    public TestRoot(Action<JsonObject>? patch = null, bool withStreamFixture = false)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "crm-host-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
        var settings = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(CrmProcess.HostOutput, "appsettings.json")))!.AsObject();
        var directories = new JsonArray(CrmProcess.BundledPlugins);
        if (withStreamFixture)
        {
            directories.Add(CrmProcess.FixturePlugins);
        }

        settings["PluginHost"]!["Directories"] = directories;
        // Every root gets its own free API port, so no test depends on the default 5080 (a patch may still set Api:Urls).
        ApiPort = FreePort();
        settings["Api"]!["Urls"] = $"http://127.0.0.1:{ApiPort}";
        patch?.Invoke(settings);
        File.WriteAllText(System.IO.Path.Combine(Path, "appsettings.json"), settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public string Path { get; }

    /// <summary>The free loopback port written into this root's <c>Api:Urls</c> (unless a patch replaced it).</summary>
    public int ApiPort { get; }

    /// <summary>The API's base address for <see cref="ApiPort"/>.</summary>
    public Uri ApiBase => new($"http://127.0.0.1:{ApiPort}/");

    /// <summary>A loopback port nobody listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public string DataDirectory => System.IO.Path.Combine(Path, "data");

    public string File_(string name) => System.IO.Path.Combine(Path, name);

    public string Socket => System.IO.Path.Combine(DataDirectory, "crm.sock");

    /// <summary>HTTP over the running engine's control socket.</summary>
    public HttpClient Control()
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://crm/") };
    }

    public async Task<string> CreateCustomerAsync(string name)
    {
        using var http = Control();
        using var response = await http.PostAsJsonAsync("customers", new { name });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!["id"]!.GetValue<string>();
    }

    /// <summary>Opens the database directly (the engine must be stopped) and hands over a store.</summary>
    public async Task WithStoreAsync(Func<ICrmStore, Task> action)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = DataDirectory,
        }).Build();
        var services = new ServiceCollection().AddLogging().AddCrmCore(config).BuildServiceProvider();
        await using (services)
        {
            await action(services.GetRequiredService<IStoreProvider>().ForActor("test"));
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process may still hold a file; the temp folder is cleaned later.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
